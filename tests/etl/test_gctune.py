"""bulk_gc(): rarer cyclic collections during bulk work, the collector restored afterwards."""

import gc
import threading

from rps_port.etl.gctune import BULK_THRESHOLDS, bulk_gc


def test_tunes_inside_and_restores_after_even_when_nested_or_failing():
    before = gc.get_threshold()
    try:
        with bulk_gc():
            assert gc.get_threshold() == BULK_THRESHOLDS
            assert gc.get_freeze_count() > 0
            with bulk_gc():
                assert gc.get_threshold() == BULK_THRESHOLDS
            assert gc.get_threshold() == BULK_THRESHOLDS  # the inner block does not end the outer one
            raise KeyError("boom")
    except KeyError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_inside_are_still_collected():
    """Without any explicit collection: garbage in cycles triggers the collector by itself, so a
    bulk load that leaks cycles still runs in bounded memory."""
    import weakref

    class Node:
        pass

    freed = []
    with bulk_gc():
        for _ in range(BULK_THRESHOLDS[0]):  # each pair is two containers that only a collection frees
            a, b = Node(), Node()
            a.other, b.other = b, a
            weakref.finalize(a, freed.append, 1)
        del a, b
    assert len(freed) > BULK_THRESHOLDS[0] // 4


def test_threads_share_one_tuning_until_the_last_leaves():
    before = gc.get_threshold()
    inside, release = threading.Barrier(3), threading.Event()

    def work():
        with bulk_gc():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert gc.get_threshold() == BULK_THRESHOLDS
    release.set()
    for t in threads:
        t.join()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
