"""The processes homeport runs, and what they share.

server.py      `homeport up` (supervises the receiver, workers and Redis) and `serve`
worker.py      a worker: runs one app's jobs at a time, each in a job process
redis.py       the embedded Redis of `homeport up`
jobprocess.py  stopping job processes and their children promptly
doctor.py      `homeport doctor`: checks everything a deploy needs
"""
