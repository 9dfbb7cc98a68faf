"""The deployer: the Kubernetes side of homeport. It takes values (a Release, a RunSpec) and
answers with outcomes; it never writes records (the lifecycle does).

kube.py             the Kubernetes adapter (the only module importing `kubernetes`, on first use)
objects.py          pure functions: RunSpec -> Kubernetes objects
deploy.py           roll a release out, restore the previous one, observe what runs
rollout.py          follows a rollout with watches and names the cause of a failure
processes.py        `[processes.NAME]`: a Deployment each, started before web is switched
volumes.py          `[volumes.NAME]`: claims, and the checks before a release mounts them
release_command.py  `[release] command`: a Kubernetes Job before the rollout
cron.py             `[cron.NAME]`: a CronJob each, from the live release; runs started by hand
appconfig.py        app env secrets kept in the Secret `<app>-config`
runs.py             one-off commands (`homeport run`): a pod each, which is its record
podlogs.py          the app's pods' output, merged and followed
ps.py               the app's processes and pods as `homeport ps` shows them
workloads.py        finding an app's processes and pods
teardown.py         removing an app's objects
streams.py          reading the API's streamed answers (watches, followed logs) by line
errors.py           RolloutError and the Kubernetes API's errors
"""
