"""The scale-blind distances (attention ``corr``, hidden ``rel_mse``) against hand values and
finite differences, the property they exist for (a common factor on both copies' scores or
states changes nothing, and the gradient along it is 0: today's ``kl`` and ``mse`` fail it), and
every distance's precision from half-precision inputs."""

import math

import pytest
import torch

from lrdrop import attention as A
from lrdrop import consistency as C

NEG = float("-inf")


def _rows(*scores, mask=None):
    """(H=1, B=1, len(scores), Tk) probabilities of score rows, masked keys at -inf."""
    s = torch.tensor(scores, dtype=torch.float64)
    if mask is not None:
        s = s.masked_fill(torch.tensor(mask), NEG)
    return torch.softmax(s, -1)[None, None]


def test_corr_hand_values():
    """Scores [0, 1, 2] and [0, 2, 1]: centred [-1, 0, 1] and [-1, 1, 0], correlation 1/2, so the
    distance is 1 - 1/2; a masked key (probability 0 in both rows) changes nothing; identical
    scores, and scores that differ by a constant per row (the same probabilities), give 0."""
    d = A.attention_consistency(_rows([0.0, 1.0, 2.0]), _rows([0.0, 2.0, 1.0]), loss="corr")
    assert d.item() == pytest.approx(0.5, rel=1e-5)
    masked = [False, False, False, True]
    d = A.attention_consistency(_rows([0.0, 1.0, 2.0, 9.0], mask=masked), _rows([0.0, 2.0, 1.0, 9.0], mask=masked),
                                loss="corr")  # fmt: skip
    assert d.item() == pytest.approx(0.5, rel=1e-5)
    assert A.attention_consistency(_rows([0.0, 1.0, 2.0]), _rows([5.0, 6.0, 7.0]), loss="corr").item() == 0
    # reversed ranking: correlation -1, distance 2 (the bound)
    assert A.attention_consistency(_rows([0.0, 1.0, 2.0]), _rows([2.0, 1.0, 0.0]), loss="corr").item() == (
        pytest.approx(2.0, rel=1e-5)
    )


def test_corr_row_with_one_real_key_is_zero_not_nan():
    """The first query of causal self-attention sees one key: nothing to correlate, 0, and a
    finite gradient."""
    p = _rows([0.0, 3.0, 1.0], mask=[False, True, True]).requires_grad_(True)
    q = _rows([0.0, 1.0, 2.0], mask=[False, True, True])
    d = A.attention_consistency(p, q, loss="corr")
    d.backward()
    assert d.item() == 0 and torch.isfinite(p.grad).all()


def test_rel_mse_hand_values():
    """mean (h1 - h2)^2 over ((mean h1^2 + mean h2^2) / 2): [1, 0] vs [0, 1]: 1 / 0.5 = 2;
    [2, 2] vs [1, 1]: 1 / 2.5 = 0.4; a padded token counts nothing."""
    h1 = torch.tensor([[1.0, 0.0], [2.0, 2.0], [7.0, 7.0]])
    h2 = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    pad = torch.tensor([False, False, True])
    assert C.hidden_consistency(h1, h2, pad, "rel_mse").item() == pytest.approx(2.0 + 0.4, rel=1e-6)
    assert C.hidden_consistency(torch.zeros(3, 4), torch.zeros(3, 4), None, "rel_mse").item() == 0


def test_corr_gradient_matches_finite_differences():
    """Through the softmax, from the scores, with a masked key per row (-inf: probability exactly
    0 whatever the perturbation), float64."""
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(2, 3, 5, 6, dtype=torch.bool)
    mask[..., -1] = True
    mask[0, 1, 2, :4] = True  # a row with two real keys

    def term(s1, s2):
        p = torch.softmax(s1.masked_fill(mask, NEG), -1)
        q = torch.softmax(s2.masked_fill(mask, NEG), -1)
        w = torch.arange(1.0, 16.0, dtype=torch.float64).view(3, 5)
        return A.attention_consistency(p, q, loss="corr", weights=w)

    s1 = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64).requires_grad_(True)
    s2 = (s1.detach() + 0.5 * torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(term, (s1, s2))


def test_rel_mse_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    h1 = torch.randn(4, 3, 8, generator=g, dtype=torch.float64).requires_grad_(True)
    h2 = torch.randn(4, 3, 8, generator=g, dtype=torch.float64).requires_grad_(True)
    pad = torch.zeros(4, 3, dtype=torch.bool)
    pad[-1, 0] = True
    w = torch.rand(4, 3, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: C.hidden_consistency(a, b, pad, "rel_mse", w), (h1, h2))


def _noisy_pair(shape, noise, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    return x, x + noise * torch.randn(*shape, generator=g, dtype=torch.float64)


# distance -> whether it is blind to a common factor on the scores (attention) or states (hidden)
ATTENTION_BLIND = {"kl": False, "mse": False, "corr": True}
HIDDEN_BLIND = {"mse": False, "cosine": True, "rel_mse": True, "rel_var": True}


@pytest.mark.parametrize("loss", list(ATTENTION_BLIND))
def test_attention_distance_along_a_common_score_scale(loss):
    """One row of 32 keys (a second with a masked key, a third causal) and noisy second-copy scores,
    both copies' scores times ``c``: a scale-blind distance has the same value at every ``c`` and
    d/dc = 0; ``kl`` and ``mse`` grow with ``c`` (d/dc > 0), so shrinking the scores lowers them."""
    s1, s2 = _noisy_pair((1, 3, 3, 32), noise=0.5)
    mask = torch.zeros(1, 3, 3, 32, dtype=torch.bool)
    mask[:, :, 1, -1] = True
    mask[:, :, 2, 10:] = True

    def at(c):
        p = torch.softmax((c * s1).masked_fill(mask, NEG), -1)
        q = torch.softmax((c * s2).masked_fill(mask, NEG), -1)
        return A.attention_consistency(p, q, loss=loss)

    c = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(at(c), c)
    if ATTENTION_BLIND[loss]:  # 0 but for the variance's epsilon (1e-6 against variances near 1)
        assert abs(slope.item()) < 1e-5 * at(1.0).item()
        assert at(0.25).item() == pytest.approx(at(1.0).item(), rel=1e-4)
        assert at(4.0).item() == pytest.approx(at(1.0).item(), rel=1e-5)
    else:
        assert slope.item() > 0.05
        assert at(0.25).item() < 0.5 * at(1.0).item()


@pytest.mark.parametrize("loss", list(HIDDEN_BLIND))
def test_hidden_distance_along_a_common_state_scale(loss):
    """Both copies' states times ``c``: ``cosine`` and ``rel_mse`` unchanged (d/dc = 0), ``mse``
    grows as c^2."""
    h1, h2 = _noisy_pair((5, 2, 16), noise=0.3)

    def at(c):
        return C.hidden_consistency(c * h1, c * h2, None, loss)

    c = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(at(c), c)
    if HIDDEN_BLIND[loss]:  # 0 but for rel_mse's epsilon (1e-8 against mean squares near 1)
        assert abs(slope.item()) < 1e-7 * at(1.0).item()
        assert at(0.1).item() == pytest.approx(at(1.0).item(), rel=1e-5)
    else:
        assert slope.item() == pytest.approx(2 * at(1.0).item(), rel=1e-9)


def test_corr_is_met_by_agreement_not_by_flattening():
    """A row of scores ``c (s + noise)`` with fresh noise in each copy at every step (dropout: the
    copies cannot remove it), ``c`` and ``s`` learned by gradient descent on the term alone:
    ``kl`` is met by shrinking the scale (c -> 0: flat rows, whatever the noise); ``corr`` gives
    ``c`` no gradient and is met by a signal that stands out of the noise (s spreads), so the two
    copies rank the keys alike."""
    g = torch.Generator().manual_seed(3)
    s0 = torch.randn(16, generator=g, dtype=torch.float64)
    end = {}
    for loss in ("kl", "corr"):
        c = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        s = s0.clone().requires_grad_(True)
        opt = torch.optim.SGD([c, s], lr=0.2)
        noise = torch.Generator().manual_seed(4)
        for _ in range(300):
            n1, n2 = (0.7 * torch.randn(16, generator=noise, dtype=torch.float64) for _ in range(2))
            opt.zero_grad()
            p, q = torch.softmax(c * (s + n1), -1), torch.softmax(c * (s + n2), -1)
            A.attention_consistency(p[None, None, None], q[None, None, None], loss=loss).backward()
            opt.step()
        end[loss] = (c.item(), s.detach().std().item())
    assert end["kl"][0] * end["kl"][1] < 0.3 * s0.std().item()  # the rows' spread shrank: flattened
    assert end["corr"][0] == pytest.approx(1.0, abs=1e-3)  # no gradient along the scale (but epsilon's)
    assert end["corr"][1] > 1.5 * s0.std().item()  # the signal grew against the noise


# ------------------------------------------------------------------- precision


def _attention_halves(dtype):
    """Rows of a wide score range (probabilities from ~1 down to ~1e-7, near fp16's smallest),
    with masked keys, as (H, B, Tq, Tk) maps of two close copies."""
    g = torch.Generator().manual_seed(1)
    s1 = torch.randn(2, 3, 4, 9, generator=g) * 4
    s2 = s1 + 0.05 * torch.randn(2, 3, 4, 9, generator=g)
    mask = torch.zeros(2, 3, 4, 9, dtype=torch.bool)
    mask[:, 1, :, -2:] = True
    p, q = (torch.softmax(s.masked_fill(mask, NEG), -1).to(dtype) for s in (s1, s2))
    return p, q


@pytest.mark.parametrize("loss", A.ATTN_LOSSES)
def test_every_attention_distance_gives_from_fp16_maps_the_fp32_value(loss):
    """The same fp16 values, upcast by the caller or not: the same value and gradient."""
    p16, q16 = _attention_halves(torch.float16)
    p16.requires_grad_(True)
    got = A.attention_consistency(p16, q16, loss=loss)
    (g16,) = torch.autograd.grad(got, p16)
    p32 = p16.detach().float().requires_grad_(True)
    want = A.attention_consistency(p32, q16.float(), loss=loss)
    (g32,) = torch.autograd.grad(want, p32)
    assert got.dtype == torch.float32 and want.item() > 0
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    torch.testing.assert_close(g16.float(), g32.to(torch.float16).float(), rtol=1e-3, atol=0)


# states where fp16 arithmetic loses what fp32 keeps: unlike magnitudes (3000 - 0.5 rounds to
# 3000 in fp16), a difference that overflows fp16 (60000 - -60000), and tiny differences whose
# square underflows fp16 (1e-4^2 = 1e-8 < 6e-8)
STATES = (
    [[3000.0, 0.5, 1.0, -2.0], [60000.0, 1.0, 1e-3, 0.25]],
    [[0.5, 3000.0, 1.0001, -2.0], [-60000.0, 1.0, 1.1e-3, 0.25]],
)


@pytest.mark.parametrize("loss", C.HIDDEN_LOSSES)
def test_every_hidden_distance_gives_from_fp16_states_the_fp32_value(loss):
    h1 = torch.tensor(STATES[0]).view(2, 1, 4).half().requires_grad_(True)  # (T, B, C)
    h2 = torch.tensor(STATES[1]).view(2, 1, 4).half()
    got = C.hidden_consistency(h1, h2, None, loss)
    (g16,) = torch.autograd.grad(got, h1)
    h1_32 = h1.detach().float().requires_grad_(True)
    want = C.hidden_consistency(h1_32, h2.float(), None, loss)
    (g32,) = torch.autograd.grad(want, h1_32)
    assert torch.isfinite(got) and want.item() > 0
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    assert g16.dtype == torch.float16
    torch.testing.assert_close(g16.float(), g32.to(torch.float16).float(), rtol=1e-3, atol=0)


def test_tiny_hidden_differences_survive_fp16():
    """Two fp16 states 1e-4 apart: the squared difference (1e-8) is below fp16's smallest value, and
    is kept because the distances square in fp32."""
    a = torch.full((3, 8), 0.0625, dtype=torch.float16)
    b = a + torch.tensor(1e-4, dtype=torch.float16)
    diff = (a.float() - b.float()).pow(2).mean().item()
    assert C.hidden_consistency(a, b, None, "mse").item() == pytest.approx(3 * diff, rel=1e-6)
    assert diff > 0 and math.isfinite(diff)


def test_output_distances_from_fp16_inputs_equal_fp32():
    """The output KL (from log-probabilities) and the regression squared difference."""
    g = torch.Generator().manual_seed(2)
    lp1 = torch.log_softmax(3 * torch.randn(4, 7, generator=g), -1).half()
    lp2 = torch.log_softmax(3 * torch.randn(4, 7, generator=g), -1).half()
    assert C.symmetric_kl_from_log_probs(lp1, lp2).item() == pytest.approx(
        C.symmetric_kl_from_log_probs(lp1.float(), lp2.float()).item(), rel=1e-6
    )
    y1, y2 = torch.tensor(STATES[0]).half(), torch.tensor(STATES[1]).half()
    assert C.squared_difference(y1, y2).item() == pytest.approx(C.squared_difference(y1.float(), y2.float()).item(),
                                                                 rel=1e-6)  # fmt: skip


def test_rel_var_hand_value_and_padding():
    """One sentence of two real tokens and a pad: copy 1 [1, 0], [3, 0]; copy 2 [1, 1], [3, 1].
    Deviations from each copy's token mean: +-[1, 0] both, spread (1 + 0) / 2 = 0.5 per copy;
    squared differences per token: mean_C [0, 1] = 0.5; so 0.5 / 0.5 = 1 per token, 2 in all."""
    h1 = torch.tensor([[[1.0, 0.0]], [[3.0, 0.0]], [[99.0, 99.0]]])
    h2 = torch.tensor([[[1.0, 1.0]], [[3.0, 1.0]], [[-9.0, 0.0]]])
    pad = torch.tensor([[False], [False], [True]])
    assert C.hidden_consistency(h1, h2, pad, "rel_var").item() == pytest.approx(2.0, rel=1e-6)
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        C.hidden_consistency(h1[:, 0], h2[:, 0], None, "rel_var")


@pytest.mark.parametrize("loss", ["rel_mse", "rel_var"])
def test_what_the_copies_share_can_lower_rel_mse_but_not_rel_var(loss):
    """A part both copies have at every token of a sentence (a bias) added with a growing factor:
    ``rel_mse`` falls as it grows (the screen's FFN outputs grew 8x), ``rel_var`` is unchanged and
    its gradient along the factor is 0."""
    h1, h2 = _noisy_pair((5, 2, 16), noise=0.3)
    shared = torch.randn(1, 2, 16, generator=torch.Generator().manual_seed(9), dtype=torch.float64)

    def at(c):
        return C.hidden_consistency(h1 + c * shared, h2 + c * shared, None, loss)

    c = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(at(c), c)
    if loss == "rel_var":
        assert abs(slope.item()) < 1e-9 and at(10.0).item() == pytest.approx(at(0.0).item(), rel=1e-9)
    else:
        assert slope.item() < 0 and at(10.0).item() < 0.1 * at(0.0).item()


def test_rel_var_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    h1 = torch.randn(4, 3, 8, generator=g, dtype=torch.float64).requires_grad_(True)
    h2 = torch.randn(4, 3, 8, generator=g, dtype=torch.float64).requires_grad_(True)
    pad = torch.zeros(4, 3, dtype=torch.bool)
    pad[-2:, 0] = True
    w = torch.rand(4, 3, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: C.hidden_consistency(a, b, pad, "rel_var", w), (h1, h2))
