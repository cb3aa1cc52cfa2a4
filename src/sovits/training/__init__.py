"""Training the so-vits-svc synthesizer: GAN losses, the training step, and the Trainer.

`losses` and `gan_step` need only torch; `trainer` brings in Lightning Fabric and
TensorBoard when it is imported, so import it only where training actually runs.
"""
