"""fsck finding codes (stable: scripts and tests rely on them), severities and the report format."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    INFO = 0  # expected after a crash and cleaned up by the next mount; the store is clean
    WARNING = 1  # inconsistency that loses no data (space leak, wrong counter); --repair fixes it
    ERROR = 2  # data is lost or unreadable, or the namespace is damaged


# code -> (severity, one-line meaning). Never renumber; retire codes instead.
CODES: dict[str, tuple[Severity, str]] = {
    "S100": (Severity.ERROR, "catalog record cannot be decoded"),
    "S101": (Severity.ERROR, "directory entry names an inode that does not exist"),
    "S102": (Severity.WARNING, "directory entry's file type differs from its inode's"),
    "S103": (Severity.WARNING, "inode link count differs from the number of entries naming it"),
    "S104": (Severity.WARNING, "inode is not reachable from the root (no entry names it)"),
    "S105": (Severity.WARNING, "directory's parent field differs from the directory holding its entry"),
    "S106": (Severity.ERROR, "directory is named by more than one entry, or entries form a cycle"),
    "S107": (Severity.ERROR, "root directory is missing"),
    "S108": (Severity.ERROR, "next-inode counter would hand out an inode number already in use"),
    "S109": (Severity.INFO, "orphan inode (unlinked while open) awaiting reclaim at next mount"),
    "S110": (Severity.WARNING, "directory entry under an inode that is not a directory"),
    "S111": (Severity.WARNING, "extended attribute of an inode that does not exist"),
    "S112": (Severity.ERROR, "file size differs from its object's size"),
    "S113": (Severity.ERROR, "catalog format record differs from STORE/FORMAT"),
    "S114": (Severity.ERROR, "catalog database is damaged (RocksDB corruption); nothing else is checked or repaired"),
    "S115": (Severity.ERROR, "chunk record of a file that is missing or not chunked (its object is kept)"),
    "S116": (Severity.ERROR, "chunk lies past its file's size or is longer than a chunk"),
    "S117": (Severity.WARNING, "chunked file's data byte count differs from its chunks"),
    "O201": (Severity.ERROR, "file names an object that has no catalog record"),
    "O202": (Severity.WARNING, "object reference count is wrong"),
    "O203": (Severity.ERROR, "object file is missing"),
    "O204": (Severity.ERROR, "object file size differs from its record"),
    "O205": (Severity.WARNING, "object file that no record names (leaked space)"),
    "O206": (Severity.WARNING, "garbage list disagrees with reference counts"),
    "O207": (Severity.WARNING, "unexpected file in the store"),
    "O208": (Severity.INFO, "staging file of an uncommitted write (removed at next mount)"),
    "O209": (Severity.INFO, "unreferenced object already deleted, record not yet (GC interrupted; next mount finishes)"),
    "O210": (Severity.WARNING, "similarity index record that no described object explains"),
    "O211": (Severity.WARNING, "image object marked described but its similarity record is missing"),
    "O212": (Severity.ERROR, "object is coded against a base that has no catalog record"),
    "O213": (Severity.WARNING, "object's dependents count is wrong"),
    "O214": (Severity.WARNING, "object's recorded chain depth differs from its reference chain"),
    "O215": (Severity.WARNING, "reference chain longer than any depth limit allows (16)"),
    "O216": (Severity.ERROR, "reference chain forms a cycle"),
    "O217": (Severity.WARNING, "pinned base (no file names it) that nothing is coded against any more"),
    "O218": (Severity.INFO, "re-planning job for an object that no longer exists (the next mount drops it)"),
    "D301": (Severity.ERROR, "object is damaged (checksum or content hash mismatch)"),
}


@dataclass
class Finding:
    code: str
    subject: str  # what the finding is about: "inode 12", "object ab12…", a path
    detail: str = ""
    affected: list[str] = field(default_factory=list)  # file paths whose content depends on the subject
    repaired: bool = False

    @property
    def severity(self) -> Severity:
        return CODES[self.code][0]

    def line(self) -> str:
        sev = self.severity.name.lower()
        text = f"{self.code} {sev:7s} {self.subject}: {CODES[self.code][1]}"
        if self.detail:
            text += f" ({self.detail})"
        if self.repaired:
            text += " [repaired]"
        return text
