"""AuC of ab accuracy and colourfulness on hand-computed cases."""

import pytest
import torch

from lightning_modules.colorization.metrics import ab_accuracy_auc, colourfulness


def test_auc_perfect_and_constant_error():
    ab = torch.randint(-60, 60, (2, 2, 4, 4)).float()  # integers: the distances below are exact
    assert ab_accuracy_auc(ab, ab).tolist() == pytest.approx([1.0, 1.0])
    # every pixel 30 units off (a 3-4-5 triangle: 18, 24): accuracy 0 up to 29, 1 from 30 on; the
    # trapezoid on integer thresholds gives 0.5 (29..30) + 120 (30..150), over 150
    shifted = ab + torch.tensor([18.0, 24.0]).view(1, 2, 1, 1)
    assert ab_accuracy_auc(shifted, ab).tolist() == pytest.approx([120.5 / 150] * 2, abs=1e-6)
    # half the pixels exact, half 200 units off (beyond every threshold): 0.5
    far = ab.clone()
    far[:, 0, :2] += 200
    assert ab_accuracy_auc(far, ab).tolist() == pytest.approx([0.5, 0.5], abs=1e-6)
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        ab_accuracy_auc(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))


def test_colourfulness_gray_and_two_colour_image():
    gray = torch.full((1, 3, 4, 4), 0.2)
    assert colourfulness(gray).item() == pytest.approx(0.0, abs=1e-4)
    # half pure red, half pure green (RGB 255,0,0 and 0,255,0): rg = +-255, yb = 127.5 everywhere
    image = -torch.ones(1, 3, 2, 2)
    image[0, 0, 0] = 1.0
    image[0, 1, 1] = 1.0
    expected = 255.0 + 0.3 * 127.5  # std(rg) = 255, std(yb) = 0, mean(rg) = 0, mean(yb) = 127.5
    assert colourfulness(image).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="RGB"):
        colourfulness(torch.zeros(1, 1, 2, 2))
