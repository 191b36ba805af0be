"Distributed losses: 2 gloo processes must give the loss and gradients of one process on the whole batch."
from fusar_klip.testing import check_itc_distributed, check_simclr_distributed


def test_itc_two_processes_equal_one():
    d = check_itc_distributed(2)
    assert d["loss"] < 1e-5
    assert d["grad_img"] < 1e-5 * d["grad_scale"] and d["grad_txt"] < 1e-5 * d["grad_scale"]


def test_without_gather_the_check_fails():
    bad = check_itc_distributed(2, gather=False)
    assert bad["grad_img"] > 1e-3 * bad["grad_scale"]


def test_simclr_two_processes_equal_one():
    d = check_simclr_distributed(2)
    assert d["loss"] < 1e-5 and d["grad"] < 1e-5 * d["grad_scale"]
