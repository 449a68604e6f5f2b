"""``make bench``: run every benchmark and print its ratios."""

from __future__ import annotations

from benchmarks import (
    bench_admin_list,
    bench_bulk_send,
    bench_check,
    bench_sync,
    bench_test_connection,
)


def main() -> None:
    bench_test_connection.main()
    bench_admin_list.main()
    bench_bulk_send.main()
    bench_check.main()
    bench_sync.main()


if __name__ == "__main__":
    main()
