"""Plain ``nn.Module`` building blocks, usable in any PyTorch model."""
