"""Compare PipeSDFA with PipeLayer on a network of your own, and see which assumptions the
verdict rests on.

A network file is YAML (``pipesdfa schema network`` lists every field); this one is a small
conv net on 2x32x32 event frames. It is compared against both baselines (PipeLayer as
published, and the edge chip running PipeLayer's dataflow), then the assumptions that move
the verdict most are listed with their documented ranges.

    python examples/compare_my_network.py
"""

import tempfile
from pathlib import Path

from emulator.compare import compare
from emulator.cost import Activity
from emulator.physics.growth import fit_chips
from emulator.sensitivity import sensitivity
from emulator.spec import load_chip, load_network

NETWORK = """
name: my-convnet
description: 2x32x32 events -> conv 16 + pool -> conv 32 + pool -> fc 10, LIF, T = 10.
input_shape: [2, 32, 32]
encoding: events
time_steps: 10
num_classes: 10
layers:
  - {type: conv, out_channels: 16, kernel: 3, padding: 1}
  - {type: pool, mode: max, kernel: 2}
  - {type: conv, out_channels: 32, kernel: 3, padding: 1}
  - {type: pool, mode: max, kernel: 2}
  - {type: fc, out: 10}
training: {epochs: 10, batch: 16, lr: 0.001, optimizer: adam}
"""

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "my-convnet.yaml"
    path.write_text(NETWORK)
    net = load_network(path)

activity = Activity.uniform(net, 0.1)
chip = load_chip("pipesdfa-edge")
for name in ("pipelayer", "pipelayer-edge"):
    a, b = fit_chips(net, chip, load_chip(name))
    result = compare(net, a, b, activity, batch=net.training.batch)
    print(f"vs {name}: speedup {result['speedup']:.4g}, energy ratio {result['energy_ratio']:.4g}")

verdict = sensitivity(net, chip, load_chip("pipelayer"), activity, batch=net.training.batch)
for row in verdict["sensitivity"][:3]:
    print(
        f"{row['field']} {row['low']}..{row['high']}: speedup "
        f"{row['speedup'][0]:.4g}..{row['speedup'][1]:.4g}, energy ratio "
        f"{row['energy_ratio'][0]:.4g}..{row['energy_ratio'][1]:.4g} ({row['source']})"
    )
