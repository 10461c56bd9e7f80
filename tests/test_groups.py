"""Parameter groups and learning-rate schedules: a group is exactly a separate optimizer over its
arrays; a schedule is exactly assigning ``lr`` before each step; bad groups change nothing;
groups survive ``state_dict``/``save``/``load`` bit for bit, and checkpoints from before groups
still load."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rmsprop_nb import AdaGrad, RMSProp


def arrays(seed, shapes=((5,), (3, 4), (7,), (2, 3)), dtypes=(np.float64, np.float32)):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtypes[i % len(dtypes)]) for i, s in enumerate(shapes)]


def grads_for(params, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def assert_same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


GROUP_OPTIONS = {
    RMSProp: [dict(lr=0.03, weight_decay=0.1), dict(lr=0.01, gamma=0.99, momentum=0.5),
              dict(centered=True, eps_in_sqrt=False, eps=1e-8), dict(maximize=True)],
    AdaGrad: [dict(lr=0.3, lr_decay=0.1), dict(lr=0.05, initial_accumulator_value=0.2),
              dict(weight_decay=0.01, eps_in_sqrt=False, eps=1e-10), dict(maximize=True)],
}


@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
def test_groups_step_exactly_as_separate_optimizers(cls):
    params = arrays(0)
    options = GROUP_OPTIONS[cls]
    copies = [p.copy() for p in params]
    grouped = cls([{"params": [p], **o} for p, o in zip(params, options)], lr=0.02)
    separate = [cls([c], **{"lr": 0.02, **o}) for c, o in zip(copies, options)]
    for t in range(12):
        g = grads_for(params, t)
        grouped.step(g)
        for opt, gi in zip(separate, g):
            opt.step([gi])
    assert_same(params, copies)
    state = grouped.state_dict()
    for i, opt in enumerate(separate):
        for name, saved in opt.state_dict()["state"].items():
            np.testing.assert_array_equal(state["state"][name][i], saved[0])


@given(st.lists(st.integers(0, 3), min_size=5, max_size=5),
       st.lists(st.sampled_from([0.001, 0.01, 0.1]), min_size=4, max_size=4))
def test_any_grouping_of_arrays_equals_one_optimizer_per_group(assignment, lrs):
    params = arrays(1, shapes=((3,), (4, 2), (1,), (6,), (2, 2)))
    copies = [p.copy() for p in params]
    groups = [[i for i, a in enumerate(assignment) if a == k] for k in range(4)]
    groups = [(ix, lr) for ix, lr in zip(groups, lrs) if ix]
    grouped = RMSProp([{"params": [params[i] for i in ix], "lr": lr} for ix, lr in groups],
                      momentum=0.3)
    separate = [(ix, RMSProp([copies[i] for i in ix], lr=lr, momentum=0.3)) for ix, lr in groups]
    order = [i for ix, _ in groups for i in ix]  # grads follow the groups' order
    for t in range(4):
        g = grads_for(params, t)
        grouped.step([g[i] for i in order])
        for ix, opt in separate:
            opt.step([g[i] for i in ix])
    assert_same(params, copies)


@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
def test_a_schedule_equals_assigning_lr_before_each_step(cls):
    def schedule(t):  # cosine decay with a 3-step warm-up
        return 0.1 * min(1.0, t / 3) * 0.5 * (1 + math.cos(math.pi * t / 20))

    p1, p2 = arrays(2), arrays(2)
    seen = []
    scheduled = cls(p1, lr=lambda t: seen.append(t) or schedule(t))
    by_hand = cls(p2)
    for t in range(1, 16):
        g = grads_for(p1, t)
        scheduled.step(g)
        by_hand.lr = schedule(t)
        by_hand.step(g)
    assert seen == list(range(1, 16))  # once per step, 1-based
    assert_same(p1, p2)


def test_editing_a_groups_lr_between_steps_takes_effect_at_the_next_step():
    p, q = arrays(3, shapes=((4,), (5,))), arrays(3, shapes=((4,), (5,)))
    grouped = RMSProp([{"params": [p[0]]}, {"params": [p[1]], "lr": 0.05}], lr=0.01)
    a, b = RMSProp([q[0]], lr=0.01), RMSProp([q[1]], lr=0.05)
    for t in range(6):
        if t == 3:
            grouped.param_groups[1]["lr"] = 0.2
            b.lr = 0.2
        g = grads_for(p, t)
        grouped.step(g)
        a.step([g[0]])
        b.step([g[1]])
    assert_same(p, q)


def test_opt_attributes_read_the_common_value_and_set_every_group():
    opt = RMSProp([{"params": [np.zeros(2)], "lr": 0.1}, {"params": [np.zeros(3)]}], lr=0.2)
    assert opt.gamma == 0.9
    with pytest.raises(AttributeError, match=r"different values of lr; read opt.param_groups"):
        opt.lr
    opt.lr = 0.05
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.05] and opt.lr == 0.05
    assert opt.defaults["lr"] == 0.2


@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
def test_add_param_group_mid_run_leaves_the_old_state_alone(cls):
    old, new = arrays(4, shapes=((6,), (3, 2))), arrays(5, shapes=((4,),))
    old2, new2 = [p.copy() for p in old], [p.copy() for p in new]
    opt = cls(old, lr=0.05, **({"lr_decay": 0.2} if cls is AdaGrad else {"momentum": 0.4}))
    ref_old = cls(old2, lr=0.05, **({"lr_decay": 0.2} if cls is AdaGrad else {"momentum": 0.4}))
    for t in range(5):
        g = grads_for(old, t)
        opt.step(g)
        ref_old.step(g)
    before = opt.state_dict()
    opt.add_param_group({"params": new, "lr": 0.2})
    after = opt.state_dict()
    for name in before["state"]:
        assert_same(after["state"][name][:2], before["state"][name])
    # The new group starts fresh, with its own step count (AdaGrad's lr_decay counts from 1).
    ref_new = cls(new2, lr=0.2, **({"lr_decay": 0.2} if cls is AdaGrad else {"momentum": 0.4}))
    assert after["param_groups"][1]["step"] == 0 and after["param_groups"][0]["step"] == 5
    for t in range(5, 9):
        g = grads_for(old + new, t)
        opt.step(g)
        ref_old.step(g[:2])
        ref_new.step(g[2:])
    assert_same(old + new, old2 + new2)


def _bad_groups():
    a, b = np.zeros(3), np.zeros(4)
    return [
        ("missing params", [{"lr": 0.1}], ValueError, r"param_groups\[0\] has no 'params' key"),
        ("unknown key", [{"params": [a], "lrr": 0.1}], ValueError, r"unknown keys \['lrr'\]"),
        ("duplicate array", [{"params": [a]}, {"params": [a]}], ValueError,
         r"param_groups\[0\]\['params'\]\[0\] and param_groups\[1\]\['params'\]\[0\] share memory"),
        ("overlapping views", [{"params": [b[:3]]}, {"params": [b[2:]]}], ValueError,
         "share memory"),
        ("bad value", [{"params": [a]}, {"params": [b], "gamma": 1.5}], ValueError,
         r"RMSProp: param_groups\[1\]\['gamma'\] must be in \[0, 1\), got 1.5"),
        ("bad type", [{"params": [a], "maximize": 1}], TypeError,
         r"param_groups\[0\]\['maximize'\] must be True or False, got int"),
        ("empty params", [{"params": []}], ValueError, r"param_groups\[0\]\['params'\] is empty"),
        ("not a dict", [{"params": [a]}, [b]], TypeError, "mixes arrays and parameter-group"),
    ]


@pytest.mark.parametrize("case", _bad_groups(), ids=lambda c: c[0])
def test_bad_groups_are_refused_with_the_group_and_key_named(case):
    _, groups, exc, message = case
    with pytest.raises(exc, match=message):
        RMSProp(groups)


def test_add_param_group_refuses_bad_groups_and_changes_nothing():
    x = np.ones(3)
    opt = RMSProp([x], lr=0.1)
    opt.step([np.ones(3)])
    before = opt.state_dict()
    for group, exc, message in [
        ({"params": [x]}, ValueError, r"params\[0\] and params\[1\] share memory"),
        ({"params": [np.zeros(2)], "eps": -1.0}, ValueError,
         r"add_param_group: param_groups\[1\]\['eps'\] must be a finite number >= 0, got -1.0"),
        ({"params": [np.zeros(2)], "nesterov": True}, ValueError, "unknown keys"),
        ({"params": [np.zeros(2, int)]}, TypeError, "must have dtype float32 or float64"),
        ("lr", TypeError, "a parameter group must be a dict"),
    ]:
        with pytest.raises(exc, match=message):
            opt.add_param_group(group)
        assert len(opt.param_groups) == 1 and len(opt.params) == 1
        after = opt.state_dict()
        assert after["param_groups"] == before["param_groups"]


@pytest.mark.parametrize("change, exc, message", [
    (lambda o: o.param_groups[1].update(lr=-0.1), ValueError,
     r"RMSProp.step: param_groups\[1\]\['lr'\] must be a finite number >= 0, got -0.1"),
    (lambda o: o.param_groups[0].__setitem__("eps_in_sqrt", "yes"), TypeError,
     r"param_groups\[0\]\['eps_in_sqrt'\] must be True or False"),
    (lambda o: o.param_groups[1].__setitem__("momentum", 0.0), ValueError,
     r"param_groups\[1\]\['momentum'\] cannot be switched off after the group was created"),
    (lambda o: o.param_groups[0].__setitem__("centered", True), ValueError,
     r"param_groups\[0\]\['centered'\] cannot be changed"),
    (lambda o: o.param_groups[1].__setitem__("lr", lambda t: -1.0), ValueError,
     r"param_groups\[1\]\['lr'\]\(3\) must be .* got -1.0 \(the value of the learning-rate "
     r"schedule at step 3\)"),
    (lambda o: o.param_groups[1].__setitem__("lr", lambda t: "0.1"), TypeError,
     r"must be a real number, got str \(the value of the learning-rate schedule"),
    (lambda o: o.param_groups[0].__setitem__("lr", lambda t: 1 / 0), ZeroDivisionError,
     "division by zero"),
])
def test_a_bad_value_in_any_group_changes_nothing(change, exc, message):
    params = arrays(6, shapes=((3,), (4,)))
    opt = RMSProp([{"params": [params[0]]}, {"params": [params[1]], "momentum": 0.5}])
    for t in range(2):
        opt.step(grads_for(params, t))
    before = [p.copy() for p in params], opt.state_dict()
    change(opt)
    with pytest.raises(exc, match=message):
        opt.step(grads_for(params, 9))
    assert_same(params, before[0])
    after = opt.state_dict()
    assert after["step"] == before[1]["step"]
    for name in after["state"]:
        for a, b in zip(after["state"][name], before[1]["state"][name]):
            assert (a is None and b is None) or (a == b).all()


def _grouped(cls, params, schedule=None):
    options = GROUP_OPTIONS[cls]
    groups = [{"params": [p], **o} for p, o in zip(params, options)]
    if schedule is not None:
        groups[0]["lr"] = schedule
    return cls(groups, lr=0.02, nonfinite="skip")


@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
@pytest.mark.parametrize("through", ["state_dict", "file"])
def test_resuming_with_groups_and_a_schedule_continues_bit_for_bit(cls, through, tmp_path):
    def schedule(t):
        return 0.05 / math.sqrt(t)

    run, resumed = arrays(7), arrays(7)
    opt = _grouped(cls, run, schedule)
    for t in range(6):
        opt.step(grads_for(run, t))
    if through == "file":
        opt.save(tmp_path / "groups.npz")
    saved = opt.state_dict()
    assert saved["param_groups"][0]["lr"] is None  # a schedule is not saved
    for p, q in zip(resumed, run):
        p[...] = q
    other = _grouped(cls, resumed, schedule)  # the same groups and schedule, then the state
    if through == "file":
        other.load(tmp_path / "groups.npz")
    else:
        other.load_state_dict(saved)
    for t in range(6, 12):
        g = grads_for(run, t)
        opt.step(g)
        other.step(g)
    assert_same(run, resumed)
    json.dumps(other.state_dict()["param_groups"])  # plain numbers, lists and None


def test_a_saved_schedule_needs_a_schedule_to_load_into():
    params = arrays(8, shapes=((3,),))
    saved = RMSProp(params, lr=lambda t: 0.1).state_dict()
    with pytest.raises(ValueError, match="used a learning-rate schedule, which is not saved"):
        RMSProp(arrays(8, shapes=((3,),)), lr=0.1).load_state_dict(saved)


def test_loading_takes_the_saved_hyperparameters_of_each_group():
    params = arrays(9, shapes=((3,), (2,)))
    opt = RMSProp([{"params": [params[0]], "lr": 0.3}, {"params": [params[1]]}])
    saved = opt.state_dict()
    other = RMSProp([{"params": [np.zeros(3)]}, {"params": [np.zeros(2, np.float32)]}])
    other.load_state_dict(saved)
    assert [g["lr"] for g in other.param_groups] == [0.3, 0.01]
    with pytest.raises(ValueError, match=r"the state has 2 parameter groups, this optimizer has 1"):
        RMSProp([np.zeros(3), np.zeros(2, np.float32)]).load_state_dict(saved)


def test_checkpoints_from_before_groups_still_load(tmp_path):
    """A format-1 file (written by rmsprop_nb 0.1 before groups) loads into one group."""
    params = arrays(10, shapes=((4,), (2, 2)))
    opt = RMSProp(params, lr=0.05, momentum=0.5)
    for t in range(3):
        opt.step(grads_for(params, t))
    state = opt.state_dict()
    path = tmp_path / "v1.npz"
    members = {
        "format_version": np.int64(1), "algorithm": np.str_("RMSProp"), "step": np.int64(3),
        "skipped_steps": np.int64(0), "hyperparams": np.str_(json.dumps(state["hyperparams"])),
    }
    for name, arrs in state["state"].items():
        for i, a in enumerate(arrs):
            members[f"state.{name}.{i}"] = a
    with open(path, "wb") as f:
        np.savez(f, **members)
    copies = [p.copy() for p in params]
    other = RMSProp(copies, lr=0.5, momentum=0.9)
    other.load(path)
    assert other.lr == 0.05 and other.step_count == 3
    old_style = {k: v for k, v in state.items() if k != "param_groups"}  # a dict of 0.1
    third = RMSProp([p.copy() for p in params], momentum=0.2)
    third.load_state_dict(old_style)
    for t in range(3, 6):
        g = grads_for(params, t)
        for o in (opt, other, third):
            o.step(g)
    assert_same(params, copies)
    assert_same(params, third.params)


def test_a_group_of_one_array_and_a_generator_of_groups_are_accepted():
    x, y = np.zeros(3), np.zeros(2)
    opt = AdaGrad(({"params": p} for p in (x, y)), lr=0.1)
    opt.step([np.ones(3), np.ones(2)])
    assert opt.params[0] is x and opt.params[1] is y and (x < 0).all()
