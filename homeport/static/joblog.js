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
    // The job ended (or the server stopped waiting): show its outcome.
    window.location.reload();
  }

  follow().catch(function (err) {
    state.textContent = "Stopped following the output (" + err.message + "); reload to go on.";
  });
})();
