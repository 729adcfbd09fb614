"""Known-harmless notices that a user of this package's entry points can do
nothing about, silenced there (``tools/train.py``; ``tools/demo.py`` through
the runs of ``benchmarks/bench_quality_digits.py`` it starts) and nowhere
else: importing ``mmssl_ext`` changes no filter.

* MMEngine's own hooks create a ``FileClient`` (``CheckpointHook``,
  ``LoggerHook``), which logs that ``FileClient`` and its ``HardDiskBackend``
  "will be deprecated in future" at every run, through the runner's
  logger;
* PyTorch warns that ``pin_memory=True`` has no effect when no accelerator
  is present (``tools/train.py`` pins memory by default, for GPUs).

Each is matched by its exact text, so any other warning still shows.
"""
import logging
import re
import warnings

#: MMEngine log lines (logged, not ``warnings.warn``)
KNOWN_LOG_LINES = (
    re.compile(r'^"FileClient" will be deprecated in future\. '),
    re.compile(r'^"HardDiskBackend" is the alias of "LocalBackend" and the '
               r'former will be deprecated in future\.$'),
)
#: (message regex, category) of Python warnings
KNOWN_WARNINGS = (
    (r".*'pin_memory' argument is set as true but no accelerator is found",
     UserWarning),
)


class KnownNoticeFilter(logging.Filter):
    """Drops the log records of :data:`KNOWN_LOG_LINES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(p.search(msg) for p in KNOWN_LOG_LINES)


def silence_known_warnings(logger=None) -> None:
    """Ignore :data:`KNOWN_WARNINGS` in this process and, given the
    runner's logger, drop :data:`KNOWN_LOG_LINES` from it (once)."""
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category)
    if logger is not None and not any(
            isinstance(f, KnownNoticeFilter) for f in logger.filters):
        logger.addFilter(KnownNoticeFilter())
