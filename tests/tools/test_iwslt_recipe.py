"""The IWSLT recipe's refusals."""

import os

from conftest import ROOT, run


def test_iwslt_recipe_refuses_missing_data_and_bad_mode(tmp_path):
    train = os.path.join(ROOT, "examples", "iwslt", "train.sh")
    p = run(["bash", train, "nonsense"], check=False)
    assert p.returncode == 2 and "usage" in p.stdout
    p = run(["bash", train, "lrdrop"], env={"DATA": str(tmp_path)}, check=False)
    assert p.returncode == 1 and "prepare-iwslt14.sh" in p.stdout
