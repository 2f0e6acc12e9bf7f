"""Train the default network on the emulated edge chip and read accuracy, time and energy.

Every tile and PE core of the chip is a core with its crossbar conductances; here they run
in this process (``runtime="local"``; ``"ray"`` makes each one a Ray actor, same bits). The
run is compared with PipeLayer on the same per-op activity.

    python examples/train_on_the_edge_chip.py
"""

from emulator.run import RunConfig, run
from emulator.spec import load_chip, load_network

config = RunConfig(
    network=load_network("digits-mlp"),  # 64-128-10 LIF, T = 8, on sklearn's 8x8 digits
    chip=load_chip("pipesdfa-edge"),  # 16 tiles x 4 PE cores x 8 crossbars of 128x128
    runtime="local",
    epochs=2,
    seed=0,
)
result = run(config)

print(f"test accuracy: {result.test_accuracy:.4f}")
print(f"weights sha256: {result.weights_sha256}")
print(f"emulated cycles: {result.cycles}")
print(f"energy per sample (pJ): {result.energy_pj_per_sample:.6g}")
comparison = result.comparison
assert comparison is not None
print(f"speedup vs {comparison.baseline}: {comparison.speedup:.4g}")
print(f"energy ratio vs {comparison.baseline}: {comparison.energy_ratio:.4g}")
