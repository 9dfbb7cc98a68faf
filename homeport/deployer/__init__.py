"""The deployer: roll a built image out on Kubernetes, gate it on readiness, roll back.

spec.py      RunSpec, what a release needs to know about how the app runs
objects.py   pure functions: RunSpec -> Kubernetes objects
kube.py      the Kubernetes adapter (the only module importing `kubernetes`)
rollout.py   follows a rollout with watches and names the cause of a failure
deploy.py    roll out, restore, observe; answers with outcomes, lifecycle.py records them
appconfig.py app env secrets kept in the Secret `<app>-config`
processes.py `[processes.NAME]`: a Deployment each, started before web is switched
cron.py      `[cron.NAME]`: a CronJob each, from the live release; runs started by hand
"""
