"""Shallow diffusion: Unit2Mel conditioning, the WaveNet denoiser, the Gaussian
schedule and its samplers."""
