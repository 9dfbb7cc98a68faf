"""Notifications: events about deploys, delivered to homeport's signed webhook and to Apprise.

events.py    the events (release live, release failed, job failed, cron failed)
deliver.py   spooling an event, and the dispatcher that delivers it
signing.py   the signature on homeport's own webhook
"""

from __future__ import annotations

from homeport.notify.deliver import Dispatcher as Dispatcher
from homeport.notify.deliver import send as send
from homeport.notify.deliver import wanted as wanted
