"""One rule for endpoints: tcp://HOST:PORT with a real port, checked before any socket exists."""
import pytest

from fervid.comms.endpoints import DEFAULT_ENDPOINT, EndpointError, check_tcp_endpoint


@pytest.mark.parametrize("endpoint", [DEFAULT_ENDPOINT, "tcp://0.0.0.0:1", "tcp://cam-host.local:65535",
                                      "tcp://[::1]:5556"])
def test_valid_endpoints_pass_unchanged(endpoint):
    assert check_tcp_endpoint(endpoint) == endpoint


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://127.0.0.1",
                                      "udp://127.0.0.1:5556", "127.0.0.1:5556", "tcp://:5556", "tcp://a b:1", ""])
def test_impossible_endpoints_are_one_line_errors(endpoint):
    with pytest.raises(EndpointError) as info:
        check_tcp_endpoint(endpoint)
    assert "\n" not in str(info.value) and repr(endpoint) in str(info.value)


def test_the_default_listens_on_loopback_only():
    assert DEFAULT_ENDPOINT.startswith("tcp://127.0.0.1:")
