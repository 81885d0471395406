"""Exception types of ase-em.

Every error that bad input can cause is a subclass of :class:`AseEmError`, itself a
``ValueError``, so callers can catch one type and the CLI can turn each into one clear
line on stderr (exit code 2) without a traceback.
"""

from __future__ import annotations


class AseEmError(ValueError):
    """Base class of all input errors raised by ase-em."""


class StructureFileError(AseEmError):
    """A structure or data file is missing, unreadable or holds no structure."""


class NoHopError(AseEmError):
    """The two endpoints are the same structure: no atom moves."""


class EndpointMismatchError(AseEmError):
    """The endpoints are not the same system (atom count, species order or cell differ)."""


class IonIndexError(AseEmError):
    """The migrating-ion index is out of range or names an atom that does not move."""


class ImplausibleHopError(AseEmError):
    """The hop is longer than a hop can be, or atoms come closer than physically possible."""


class UnsupportedElementError(AseEmError):
    """An element has no representation in the model (no atom features)."""


class ModelLoadError(AseEmError):
    """A model directory is missing, incomplete, or its weights fail the checksum."""


class DataFileError(AseEmError):
    """A labelled data file has bad rows; ``problems`` lists one line per bad row."""

    def __init__(self, path: str, problems: list[str]) -> None:
        """Store the file path and the list of row problems."""
        self.path = path
        self.problems = list(problems)
        head = f"{path}: {len(self.problems)} bad row(s)"
        super().__init__(head + "\n" + "\n".join(self.problems))


class DisorderedStructureError(StructureFileError):
    """A structure has partial occupancies or mixed sites (give an ordered structure)."""


class BlockedPathError(ImplausibleHopError):
    """The straight path of the ion runs through (or far too close to) a host atom."""


class SpeciesError(AseEmError):
    """A species name is not an element symbol (optionally with a charge, such as Li+)."""


class FolderLockedError(AseEmError):
    """Another process is writing the same output folder."""


class DisorderError(AseEmError):
    """A disordered structure cannot be ordered within the caps (supercell size, time)."""


class MissingIonError(AseEmError):
    """The migrating ion is not in the structure, or the structure has no hops of it."""


class PotentialError(AseEmError):
    """The interatomic potential cannot be built, or cannot compute a structure."""


class RefineSettingsError(AseEmError):
    """Bad refinement settings, or a workdir that holds a refinement of something else."""


class ScreenRowError(AseEmError):
    """A screening-database row cannot be refined (missing, failed, disordered, mismatched)."""


class VacancySupercellError(AseEmError):
    """A MigrationHop's endpoints are not occupied sites of its structure (no vacancy hop)."""


class TransportError(AseEmError):
    """A hop network for transport is malformed (shapes, indices, barriers, detailed balance)."""
