# Experiment (docs/benchmarks.md): full KTAN with the discriminator's learning rate on the
# student's schedule (warm-up, cosine decay) instead of constant, so that it does not outlearn a
# student whose learning rate has decayed. Run by tools/benchmark_quality.py --variants
# ktan-disc-student-lr.
_base_ = './ktan_faster-rcnn_r50-to-r18_synthetic.py'

param_scheduler = dict(discriminator=_base_.param_scheduler.student)
