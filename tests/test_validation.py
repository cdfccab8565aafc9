from sparkle_bench.validation import validate_demo, validate_real


def test_every_demo_perturbation_moves_its_metric_the_right_way(demo_root):
    checks = validate_demo(demo_root)
    assert len(checks) == 17
    assert [f"{c.case}/{c.metric}" for c in checks if not c.passed] == []


def test_real_clip_validation(real_dir):
    checks = validate_real(real_dir)
    assert len(checks) == 4 + 4 + 16
    assert [f"{c.case}/{c.metric}" for c in checks if not c.passed] == []
