"""Known-harmless notices are silenced in the entry points only, by their
exact text; everything else still shows."""
import logging
import subprocess
import sys
import warnings

from mmssl_ext.utils.quiet import KnownNoticeFilter, silence_known_warnings

PIN = ("'pin_memory' argument is set as true but no accelerator is found, "
       "then device pinned memory won't be used.")


def test_importing_the_package_silences_nothing():
    """After ``import mmssl_ext`` (and whatever the stack adds on import),
    the known notices still show: only the entry points silence them."""
    code = (
        'import warnings, mmssl_ext, mmssl_ext.utils.quiet\n'
        'with warnings.catch_warnings(record=True) as seen:\n'
        f'    warnings.warn({PIN!r}, UserWarning)\n'
        'assert [str(w.message) for w in seen] == [%r], seen\n' % PIN)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_only_the_known_warnings_are_ignored():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        silence_known_warnings()
        warnings.warn(PIN, UserWarning)
        warnings.warn("'pin_memory' is fine", UserWarning)
        warnings.warn(PIN, DeprecationWarning)  # another category
    assert [str(w.message) for w in seen] == ["'pin_memory' is fine", PIN]


def test_log_filter_drops_mmengine_deprecation_lines_only():
    from mmengine.fileio import FileClient
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('quiet_test', log_level='INFO')
    silence_known_warnings(logger)
    silence_known_warnings(logger)  # once
    assert sum(isinstance(f, KnownNoticeFilter) for f in logger.filters) == 1
    seen = []

    class _Keep(logging.Handler):

        def emit(self, record):
            seen.append(record.getMessage())

    handler = _Keep()
    logger.addHandler(handler)
    try:
        # what MMEngine's CheckpointHook / LoggerHook do (logged to the
        # current logger: this one, the latest created)
        assert MMLogger.get_current_instance() is logger
        FileClient._instances.clear()  # a fresh client logs both notices
        FileClient.infer_client(None, '/tmp')
        logger.warning('"FileClient" is mentioned, but not deprecated here')
        logger.warning('a real problem')
    finally:
        logger.removeHandler(handler)
    assert seen == ['"FileClient" is mentioned, but not deprecated here',
                    'a real problem']
    # without the filter the same call logs both notices
    logger.filters.clear()
    logger.addHandler(handler)
    try:
        seen.clear()
        FileClient._instances.clear()
        FileClient.infer_client(None, '/tmp')
    finally:
        logger.removeHandler(handler)
    assert any('"FileClient" will be deprecated' in m for m in seen)
    assert any('"HardDiskBackend" is the alias' in m for m in seen)
