"""Training of the embedded model lina-mini: BPE tokenizer, bucketed codes data, the training
loop with exact resume, the fp16 export in our folder format, and loss curves.

    python -m lab.training.lm train   --codes DIR --run RUNDIR --config mini --steps 20000 --max-seconds 540
    python -m lab.training.lm shard   --run RUNDIR --out DIR [--weights-only --half]   # <= 15 MiB files
    python -m lab.training.lm export  --run RUNDIR --codec CODECDIR --out assets/lina-mini
    python -m lab.training.lm curves  --run RUNDIR --out lab/notes/lina_mini_training.png

Files: configs (model presets and their CPU timing), tokenizer (BPE training), data (codes dataset and
length bucketing), optim (AdamW groups and the learning-rate schedule), checkpoint (last.pt and its
sharded copy), train (the loop), export, curves, __main__ (CLI). lab/scripts/gpu_lm_train.sh is one GPU call:
a full resumable checkpoint (12 bytes a parameter) is too big for the files a call sends back, so a run
continues exactly only on a machine still warm (or from a copied full shard folder of a small model);
what comes back are the fp16 weights (shard --weights-only --half), which export reads.
"""
