// Follow a job's output on its page: read the streamed log and append it as it arrives.
// Without JavaScript the page refreshes itself instead (see job.html).
"use strict";
(function () {
  const pre = document.getElementById("log");
  const state = document.getElementById("log-state");
  if (!pre || pre.dataset.ended === "true" || !window.fetch || !window.TextDecoder) return;

  async function follow() {
    const answer = await fetch(pre.dataset.logUrl, { credentials: "same-origin" });
    if (!answer.ok || !answer.body) throw new Error("the log answered " + answer.status);
    const reader = answer.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      pre.textContent = text;
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    pre.dataset.ended = "true";
    await showOutcome();
  }

  // The stream ends with the job: put its outcome in place, without reloading the page.
  async function showOutcome() {
    const answer = await fetch(window.location.href, { credentials: "same-origin" });
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    for (const id of ["job-status", "job-reason"]) {
      const fresh = page.getElementById(id);
      const old = document.getElementById(id);
      if (fresh && old) old.replaceWith(fresh);
      else if (fresh) pre.before(fresh);
    }
    const ended = page.getElementById("log");
    state.textContent = ended && ended.dataset.ended === "true"
      ? "Ended."
      : "Stopped following (the job goes on); reload to follow it again.";
  }

  follow().catch(function (err) {
    state.textContent = "Stopped following the output (" + err.message + "); reload to go on.";
  });
})();
