"""The app's volumes on the cluster: claims made when missing, never deleted by a deploy.

Volumes belong to the app, not to a release: a deploy, a failed deploy and a rollback create
a missing claim and may grow one, but never delete or recreate it. A volume dropped from
homeport.toml is unmounted and its claim kept; removing it is the user's call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from homeport.deployer import objects
from homeport.deployer.errors import ApiError, RolloutError
from homeport.deployer.kube import Kube
from homeport.settings import Settings
from homeport.spec import RunSpec, Volume

Emit = Callable[[str], None]

EXCLUSIVE = "ReadWriteOncePod"
_QUANTITY = re.compile(r"([0-9.]+)([A-Za-z]*)")
_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def quantity_bytes(text: str) -> Decimal | None:
    """A storage quantity in bytes; None when it is not one homeport writes."""
    match = _QUANTITY.fullmatch(text.strip())
    if not match or match.group(2) not in _FACTORS:
        return None
    try:
        return Decimal(match.group(1)) * _FACTORS[match.group(2)]
    except InvalidOperation:
        return None


def _requested(claim: Mapping[str, Any]) -> str:
    return str(
        ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "")
    )


def _resize(kube: Kube, app: str, volume: Volume, claim: Mapping[str, Any], emit: Emit) -> None:
    name = objects.claim_name(app, volume.name)
    have = _requested(claim)
    old, new = quantity_bytes(have), quantity_bytes(volume.size)
    if old is None or new is None or old == new:
        return
    if new < old:
        emit(
            f"       volume {volume.name}: size {volume.size} is smaller than the claim {name}"
            f" ({have}); claims cannot shrink, so it stays at {have} with its data"
        )
        return
    try:
        kube.merge_patch(
            "persistentvolumeclaims",
            name,
            {"spec": {"resources": {"requests": {"storage": volume.size}}}},
        )
    except ApiError as exc:
        if exc.status not in (400, 403, 422):
            raise
        # 403 is the API server's resize admission: the class has no allowVolumeExpansion.
        why = "does not allow expansion" if exc.status == 403 else f"refused it ({exc})"
        emit(
            f"       volume {volume.name}: claim {name} stays at {have} with its data: its"
            f" storage class {why}, so it cannot grow to {volume.size}; homeport never"
            f" recreates a claim. Set size back to {have}, or copy the data to a larger"
            " volume yourself"
        )
        return
    emit(
        f"       volume {volume.name}: growing claim {name} from {have} to {volume.size}"
        " (the storage class allows expansion; the file system grows when the node resizes it)"
    )


def ensure(settings: Settings, kube: Kube, app: str, spec: RunSpec, emit: Emit) -> bool:
    """Create the release's missing claims, grow those asked to be larger, note dropped ones.

    Returns whether a claim only one pod may mount (ReadWriteOncePod) is among them: then the
    Deployment must stop old pods before starting new ones.
    """
    exclusive = False
    for volume in spec.volumes:
        body = objects.volume_claim(
            app, volume, settings.storage_class, settings.volume_access_mode
        )
        created = kube.create(body)
        claim = (
            created
            if created is not None
            else kube.get("persistentvolumeclaims", body["metadata"]["name"])
        )
        if claim is None:
            raise RolloutError(
                f"claim {body['metadata']['name']} of volume {volume.name} vanished while it was"
                " created; deploy again"
            )
        meta = claim.get("metadata") or {}
        name = meta.get("name")
        if meta.get("deletionTimestamp"):
            raise RolloutError(
                f"claim {name} of volume {volume.name} is being deleted (it goes once no pod"
                f" uses it); deploy again when `kubectl -n {kube.namespace} get pvc {name}`"
                " finds it gone"
            )
        if created is not None:
            emit(f"       volume {volume.name}: created claim {name} ({volume.size})")
        else:
            _resize(kube, app, volume, claim, emit)
        if EXCLUSIVE in ((claim.get("spec") or {}).get("accessModes") or []):
            exclusive = True
    _note_dropped(kube, app, spec, emit)
    if exclusive:
        emit(
            f"-----> warning: a volume of {app} is {EXCLUSIVE} (one pod at a time): old pods stop"
            " before new ones start, so the app is down during the rollout"
        )
    return exclusive


def create_missing(settings: Settings, kube: Kube, app: str, spec: RunSpec, emit: Emit) -> None:
    """Create the release's claims that do not exist yet, for a pod that runs before the
    rollout (the release command); ensure() does the rest when the rollout starts."""
    for volume in spec.volumes:
        body = objects.volume_claim(
            app, volume, settings.storage_class, settings.volume_access_mode
        )
        if kube.create(body) is not None:
            emit(
                f"       volume {volume.name}: created claim {body['metadata']['name']}"
                f" ({volume.size})"
            )


def kept_claims(kube: Kube, app: str) -> list[str]:
    """Names of the app's claims (every volume it ever had that nobody deleted)."""
    listed = kube.list("persistentvolumeclaims", selector=objects.selector(app))
    return sorted(str(c["metadata"]["name"]) for c in listed.get("items") or [])


def _note_dropped(kube: Kube, app: str, spec: RunSpec, emit: Emit) -> None:
    wanted = {objects.claim_name(app, v.name) for v in spec.volumes}
    for name in kept_claims(kube, app):
        if name not in wanted:
            emit(
                f"       claim {name} is no longer a volume in homeport.toml: unmounted, kept with"
                f" its data; delete it with `kubectl -n {kube.namespace} delete pvc {name}`"
            )
