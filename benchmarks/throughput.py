"""Framework overhead: DCGAN training throughput in genforge against a bare PyTorch loop.

Same networks (built from the same config), same data loader, batch size and optimizers, same algorithm
(one discriminator and one generator step per batch, the generator's batch reused). The two are timed in
alternation within one process, ``--rounds`` times each, on ``--batches`` batches after ``--warmup``;
the table shows images/s and the ratio (target: genforge >= 0.95 x bare).

    python benchmarks/throughput.py [--batches 40] [--rounds 3] [--batch-size 64] [--accelerator gpu]

``--accelerator gpu``: both loops on the first CUDA GPU (the bare loop moves its networks and batches there,
genforge runs under ``trainer=gpu``); default ``cpu``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import batch_timer, compose, markdown_table


def bare_loop(cfg, batches: int, warmup: int, device: str = "cpu") -> float:
    """Images/s of a plain PyTorch DCGAN loop on genforge's networks and data, on ``device``."""
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate

    torch.manual_seed(cfg.seed)
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    model = instantiate(cfg.model)
    generator, discriminator = model.generator.to(device), model.discriminator.to(device)
    opt_g, opt_d = model.configure_optimizers()
    generator.train()
    discriminator.train()
    latent_dim = cfg.model.latent_dim
    seen, start = 0, None
    loader = iter(datamodule.train_dataloader())
    for i in range(warmup + batches):
        if i == warmup:
            start = time.perf_counter()
        try:
            real, _ = next(loader)
        except StopIteration:
            loader = iter(datamodule.train_dataloader())
            real, _ = next(loader)
        real = real.to(device, non_blocking=True)
        z = torch.randn(real.shape[0], latent_dim, device=device)
        fake = generator(z)
        d_real, d_fake = discriminator(real), discriminator(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        out = discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        discriminator.requires_grad_(True)
        d_loss.item(), g_loss.item()  # the bare loop also looks at its losses each step
        if i >= warmup:
            seen += real.shape[0]
    return seen / (time.perf_counter() - start)


def genforge_loop(cfg, batches: int, warmup: int) -> float:
    """Images/s of ``train.py``'s fit loop (the model's training_step in Lightning's Trainer), timed by a
    callback from the end of the warm-up batches to the end of the last batch."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from utils.config import instantiate_group

    pl.seed_everything(cfg.seed)
    timer = batch_timer(warmup)
    trainer = instantiate(cfg.trainer, callbacks=[timer, *instantiate_group(cfg.callbacks, "callbacks")],
                          logger=instantiate_group(cfg.logger, "logger"))
    trainer.fit(instantiate(cfg.model), datamodule=instantiate(cfg.data))
    return timer.images / (timer.end - timer.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    args = parser.parse_args()
    device = "cuda" if args.accelerator == "gpu" else "cpu"
    out = Path(tempfile.mkdtemp(prefix="genforge-throughput-"))
    # the default run's training loop: CSV logging, the rich progress bar and the divergence guard on;
    # validation, checkpoints and the per-epoch callbacks off (they are not part of a training step)
    off = ["model_checkpoint", "last_checkpoint", "model_summary", "samples", "interpolation", "evaluation",
           "parzen"]
    overrides = ["model=dcgan", "data=mnist5k", f"trainer={args.accelerator}", "logger=csv",
                 f"data.batch_size={args.batch_size}",
                 "trainer.max_epochs=1", f"trainer.limit_train_batches={args.batches + args.warmup}",
                 "trainer.limit_val_batches=0", "+trainer.enable_checkpointing=false",
                 *[f"callbacks.{name}=null" for name in off]]
    results = {"bare PyTorch": [], "genforge (Lightning)": []}
    for r in range(args.rounds):
        results["bare PyTorch"].append(bare_loop(compose(overrides, out / f"bare{r}"), args.batches, args.warmup,
                                                 device))
        results["genforge (Lightning)"].append(
            genforge_loop(compose(overrides, out / f"gf{r}"), args.batches, args.warmup))
    bare = sorted(results["bare PyTorch"])[len(results["bare PyTorch"]) // 2]
    rows = []
    for name, values in results.items():
        median = sorted(values)[len(values) // 2]
        rows.append([name, f"{median:.1f}", " / ".join(f"{v:.1f}" for v in values), f"{median / bare:.3f}"])
    print(f"DCGAN on mnist5k ({args.accelerator}), batch {args.batch_size}, {args.batches} timed batches x "
          f"{args.rounds} rounds")
    print(markdown_table(["loop", "images/s (median)", "each round", "ratio to bare"], rows))


if __name__ == "__main__":
    main()
