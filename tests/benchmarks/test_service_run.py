"""``benchmarks.service_run.free_port``: ports the service tests and benchmarks give ``fervid up``."""
import socket

from fervid.benchmarks.service_run import FREE_PORT_RANGE, free_port


def ephemeral_range() -> tuple[int, int]:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
        low, high = map(int, handle.read().split())
    return low, high


def test_free_ports_are_bindable_and_outside_the_ranges_the_kernel_and_ray_hand_out():
    low, _ = ephemeral_range()
    ports = {free_port() for _ in range(50)}
    assert len(ports) > 40  # random, so parallel runs rarely pick the same one
    for port in ports:
        assert FREE_PORT_RANGE[0] <= port < FREE_PORT_RANGE[1]
        assert port < low and port > 19_999  # not ephemeral, not one of Ray's worker ports
    port = ports.pop()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_returned(monkeypatch):
    """A range of 60 ports with every one that can be held held but the last few: only those come back."""
    from fervid.benchmarks import service_run

    first = FREE_PORT_RANGE[0] + 500
    held = []
    try:
        for port in range(first, first + 55):
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
                sock.listen()
                held.append(sock)
            except OSError:  # in use already: just as good
                sock.close()
        monkeypatch.setattr(service_run, "FREE_PORT_RANGE", (first, first + 60))
        picked = {free_port() for _ in range(100)}
        assert picked <= set(range(first + 55, first + 60)), picked
    finally:
        for sock in held:
            sock.close()
