"""Sequential PixelCNN sampling: the full sampler against the cached (Gated PixelCNN) and windowed (PixelCNN)
samplers of ``lightning_modules/pixelcnn/sampling.py``.

Untrained float32 networks (the work per step does not depend on the weights), binarized 28 x 28 grey
images (``levels=2``), the same uniform noise for both samplers. The table gives the wall time per batch,
images/s, the speed-up over the full sampler (target for the Gated PixelCNN: >= 10x), the fraction of
sub-pixels where the two samples agree (1 unless float rounding moves a logit across a CDF boundary) and
the largest difference of the conditionals the two computed.

    python benchmarks/pixelcnn_sampling.py [--images 8] [--size 28] [--threads 1] [--pixelcnn]
"""

from __future__ import annotations

import argparse
import time

from _common import markdown_table


def main() -> None:
    import torch

    from lightning_modules.pixelcnn.networks import GatedPixelCNN, PixelCNN
    from lightning_modules.pixelcnn.sampling import CachedGatedSampler, WindowedPixelCNNSampler, sample_full

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--pixelcnn", action="store_true",
                        help="also time the original PixelCNN (conf/model/network/pixelcnn.yaml sizes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nets = [("GatedPixelCNN(hidden=32, layers=8, kernel_size=5)",
             GatedPixelCNN(1, levels=2, hidden=32, layers=8, kernel_size=5), CachedGatedSampler, "cached")]
    if args.pixelcnn:
        nets.append(("PixelCNN(hidden=32, layers=12, 3x3, first 7x7)",
                     PixelCNN(1, levels=2, hidden=32, layers=12, kernel_size=3, first_kernel_size=7),
                     WindowedPixelCNNSampler, "windowed"))
    z = torch.rand(args.images, 1, args.size, args.size, generator=torch.Generator().manual_seed(0))
    rows = []
    for name, net, sampler_cls, label in nets:
        net.eval()
        start = time.perf_counter()
        full, full_logits = sample_full(net, z, return_logits=True)
        full_s = time.perf_counter() - start
        start = time.perf_counter()
        fast, fast_logits = sampler_cls(net).sample(z, return_logits=True)
        fast_s = time.perf_counter() - start
        agree = (full == fast).double().mean().item()
        diff = (full_logits - fast_logits).abs().max().item()
        rows.append([name, "full", f"{full_s:.2f}", f"{args.images / full_s:.2f}", "1.0x", "", ""])
        rows.append([name, label, f"{fast_s:.2f}", f"{args.images / fast_s:.2f}", f"{full_s / fast_s:.1f}x",
                     f"{agree:.4f}", f"{diff:.1e}"])
        print(f"{name}: full {full_s:.1f} s, {label} {fast_s:.1f} s", flush=True)
    print(f"\n{args.images} images of {args.size}x{args.size} grey, levels=2, float32, CPU, "
          f"{args.threads} thread(s)")
    print(markdown_table(["network", "sampler", "s / batch", "images / s", "speed-up", "samples agree",
                          "max abs logit diff"], rows))


if __name__ == "__main__":
    main()
