"""Generates the benchmark tree: a dvc.yaml with STAGES stages over FILES dependency files.

Stage i reads its own folder of FILES/STAGES small files (`data/shard_i/`), its script,
one key of params.yaml, and the output of stage i-1 (a chain, so the graph has depth);
it writes `out/stage_i.txt`. Both `dvc status` and `factory pipeline status` read this
same dvc.yaml and the same dvc.lock.
"""

import os
import sys

root, stages, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = files // stages
os.makedirs(os.path.join(root, "out"), exist_ok=True)
os.makedirs(os.path.join(root, "src"), exist_ok=True)
lines = ["stages:"]
params = []
for i in range(stages):
    shard = os.path.join(root, "data", f"shard_{i:02d}")
    os.makedirs(shard, exist_ok=True)
    for j in range(per):
        with open(os.path.join(shard, f"f{j:04d}.csv"), "w") as f:
            f.write(f"id,value\n{i},{j}\n{j},{i * j}\n")
    with open(os.path.join(root, "src", f"stage_{i:02d}.sh"), "w") as f:
        f.write(f"echo stage {i} > out/stage_{i:02d}.txt\n")
    params.append(f"stage_{i:02d}:\n  alpha: {i / 10}\n")
    deps = [f"data/shard_{i:02d}", f"src/stage_{i:02d}.sh"] + ([f"out/stage_{i - 1:02d}.txt"] if i else [])
    lines += [
        f"  stage_{i:02d}:",
        f"    cmd: sh src/stage_{i:02d}.sh",
        "    deps:",
        *[f"      - {d}" for d in deps],
        "    params:",
        f"      - stage_{i:02d}.alpha",
        "    outs:",
        f"      - out/stage_{i:02d}.txt",
    ]
with open(os.path.join(root, "dvc.yaml"), "w") as f:
    f.write("\n".join(lines) + "\n")
with open(os.path.join(root, "params.yaml"), "w") as f:
    f.write("".join(params))
print(f"{stages} stages, {per * stages} dependency files in {root}")
