"""The work folder of a fine-tune: resume rules, its settings record, clean-up."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from ase_em.errors import AseEmError
from ase_em.training.finetune._config import CHECKPOINT, SETTINGS

logger = logging.getLogger(__name__)


def prepare_workdir(work: Path, settings: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
    """Apply the resume rules; create ``work`` and record the run's settings there."""
    settings_file = work / SETTINGS
    leftovers = [work / CHECKPOINT, *work.glob("member*.pt")] if work.is_dir() else []
    leftovers = [p for p in leftovers if p.is_file()]
    if leftovers and resume:
        try:
            old = json.loads(settings_file.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        new = json.loads(json.dumps(settings))
        if old != new:
            changed = _changed_files(old, new)
            if changed:
                raise AseEmError(
                    f"{work}: structure file(s) changed since the checkpoint was written: "
                    f"{', '.join(changed)}; the checkpoint was trained on the old structures: "
                    "use --overwrite to start over with the new ones, or restore the files"
                )
            differ = sorted(k for k in new if not isinstance(old, dict) or old.get(k) != new[k])
            raise AseEmError(
                f"{work}: the checkpoint belongs to a different run (differs in: "
                f"{', '.join(differ) or 'settings'}); rerun with the same data and settings, or "
                "use --overwrite to start over"
            )
        logger.info("resuming from the checkpoint in %s", work)
        return
    if leftovers and not overwrite:
        raise AseEmError(
            f"{work}: an interrupted run left a checkpoint; use --resume to continue it or "
            "--overwrite to start over"
        )
    for p in leftovers:
        p.unlink()
    work.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(settings) + "\n")


def clean_workdir(work: Path, *, default: bool) -> None:
    """Remove the checkpoints of a finished run (the default work dir entirely)."""
    if default:
        shutil.rmtree(work, ignore_errors=True)
        return
    for p in [work / CHECKPOINT, work / SETTINGS, *work.glob("member*.pt")]:
        p.unlink(missing_ok=True)


def _changed_files(old: Any, new: dict[str, Any]) -> list[str]:
    """Structure files (as the CSV names them) whose checksum differs from the checkpoint's."""
    if not isinstance(old, dict) or not isinstance(old.get("structure_files"), dict):
        return []
    before, now = old["structure_files"], new.get("structure_files", {})
    return sorted(f for f in set(before) | set(now) if before.get(f) != now.get(f))
