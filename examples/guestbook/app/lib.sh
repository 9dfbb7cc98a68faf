# Shared by the scripts: where the data lives and the format this release reads.
DATA=${DATA_DIR:-/data}
ENTRIES=$DATA/entries.v2
INBOX=$DATA/inbox
FORMAT=2

# The worker and the compaction both rewrite the entries: one at a time.
lock() {
  tries=0
  until mkdir "$DATA/.lock" 2>/dev/null; do
    tries=$((tries + 1))
    # A holder killed mid-write leaves the lock behind; none holds it for 10 s.
    if [ "$tries" -gt 50 ]; then rmdir "$DATA/.lock" 2>/dev/null; tries=0; fi
    sleep 0.2
  done
}
unlock() { rmdir "$DATA/.lock" 2>/dev/null || true; }
