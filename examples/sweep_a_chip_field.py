"""Sweep a chip field and plot how throughput, energy and the PipeLayer ratios follow.

The analytic cost model (no training) places N-MNIST's 3-layer MLP on the edge chip with 64,
128 and 256 rows per crossbar, the PipeLayer baseline swept alike, both grown to hold it.

    python examples/sweep_a_chip_field.py [OUT.png]
"""

import sys

from emulator.compare import compare
from emulator.cost import Activity
from emulator.physics.growth import fit_chips
from emulator.report.curves import scaling_curves
from emulator.spec import load_chip, load_network, with_fields

net = load_network("nmnist-mlp3")
activity = Activity.uniform(net, 0.1)  # every layer's inputs spike at 10 % per step
points = []
for rows in (64, 128, 256):
    chip, baseline = (
        with_fields(load_chip(name), {"crossbar.rows": rows})
        for name in ("pipesdfa-edge", "pipelayer")
    )
    chip, baseline = fit_chips(net, chip, baseline)  # the smallest square mesh for both
    result = compare(net, chip, baseline, activity, batch=net.training.batch)
    ps = result["pipesdfa"]
    points.append(
        {
            "rows": rows,
            "samples_per_s": 1e9 / ps["time_ns_per_sample"],
            "energy_pj_per_sample": ps["energy_pj_per_sample"],
            "speedup": result["speedup"],
            "energy_ratio": result["energy_ratio"],
        }
    )
    print(
        f"rows {rows}: mesh {chip.noc.mesh}, {points[-1]['samples_per_s']:.6g} samples/s, "
        f"speedup {result['speedup']:.4g}, energy ratio {result['energy_ratio']:.4g}"
    )

out = sys.argv[1] if len(sys.argv) > 1 else "sweep.png"
keys = ["samples_per_s", "energy_pj_per_sample", "speedup", "energy_ratio"]
scaling_curves(points, out, x="rows", ys=keys, title="nmnist-mlp3 over crossbar rows")
print(f"plot: {out}")
