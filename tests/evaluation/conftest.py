"""One BLAS thread for these tests: their matrices are tiny, and on a shared 2-core machine
waking BLAS threads costs more than the arithmetic (milliseconds per call under load)."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _single_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield
