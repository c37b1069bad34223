"""Hot reload of the routing rules: a saved file takes effect without a restart.

A file that does not validate is refused: the previous rules stay in force, and the refusal
shows in the log (``event=rules_rejected`` with file:line and problem) and in the stage's
metrics (counter ``rules.rejected``, ``info.rules_rejected``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.metrics import StageMetrics
from pipeline.route.rules import RoutingRules, parse_rules

log = logging.getLogger(__name__)
# ``examples_file: category_examples.yaml`` at the top level of the rules file.
EXAMPLES_FILE = re.compile(rb"""(?m)^examples_file:[ \t]*["']?([^"'\s#]+)""")


class RulesHolder:
    """The rules in force, and the last refusal if the file on disk is broken."""

    def __init__(self, path: str | Path, metrics: StageMetrics | None = None) -> None:
        self.path = Path(path)
        self.metrics = metrics
        self.rules: RoutingRules | None = None
        self.version: str | None = None
        self.rejected: str | None = None
        self._seen_digest: str | None = None
        self._pending_digest: str | None = None

    def load(self) -> RoutingRules:
        """First load: a broken file is fatal here (there are no previous rules to keep)."""
        self.reload()
        if self.rules is None:
            raise ConfigError(self.rejected or f"{self.path}: no rules")
        return self.rules

    def reload(self) -> bool:
        """Read the file; once changed content has settled, validate it and put it in force.

        Returns whether new rules are in force. Called every ``reload_interval_seconds``, so
        an edit takes effect within two intervals.
        """
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            return self._reject(hashlib.sha256(str(exc).encode()).hexdigest(),
                                f"{self.path}: cannot read: {exc.strerror or exc}")
        digest = self._digest(data)
        if digest == self._seen_digest:
            return False
        if self.rules is not None and digest != self._pending_digest:
            # Act on a change only once the content stayed the same for one interval: an
            # editor that writes in place may still be writing (half a file could be valid).
            self._pending_digest = digest
            return False
        self._pending_digest = None
        try:
            rules = parse_rules(data.decode("utf-8", "replace"), str(self.path))
        except ConfigError as exc:
            return self._reject(digest, str(exc))
        self._seen_digest = digest
        previous, self.rules, self.version = self.version, rules, digest[:12]
        self.rejected = None
        if self.metrics is not None:
            self.metrics.count("rules.loaded")
            self.metrics.info["rules_version"] = self.version
            self.metrics.info.pop("rules_rejected", None)
        log.info("event=rules_loaded path=%s version=%s previous=%s rules=%d", self.path,
                 self.version, previous, len(rules.rules))
        return True

    def _digest(self, data: bytes) -> str:
        """Of the rules file and of the past messages file it names: editing either one
        reloads the rules."""
        digest = hashlib.sha256(data)
        named = EXAMPLES_FILE.search(data)
        # An unreadable one is reported by parse_rules, with its line.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if named is not None:
                digest.update(b"\0" + (self.path.parent / named.group(1).decode()).read_bytes())
        return digest.hexdigest()

    def _reject(self, digest: str, problem: str) -> bool:
        if digest == self._seen_digest:
            return False  # already reported this very content
        self._seen_digest = digest
        self.rejected = problem
        if self.metrics is not None:
            self.metrics.count("rules.rejected")
            self.metrics.info["rules_rejected"] = problem
        log.warning("event=rules_rejected path=%s kept_version=%s problem=%r", self.path,
                    self.version, problem)
        return False
