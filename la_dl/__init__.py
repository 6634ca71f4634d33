"""la_dl: the linear algebra of deep learning, as readable PyTorch.

One module per book section; every function mirrors the signature of its
``torch.nn.functional`` counterpart so the two can be swapped and compared.

=====================  ==============================================
module                 book section
=====================  ==============================================
``la_dl.device``       setup: device choice, seeding
``la_dl.mlp``          §1 the network is the matmul chain
``la_dl.backprop``     §2 backprop is the matrix chain rule
``la_dl.conv``         §3 convolution is GEMM in disguise
``la_dl.attention``    §4 attention is a soft lookup
``la_dl.transformer``  §5 a Transformer block
``la_dl.norm``         §6 normalisation
``la_dl.init``         §7 initialisation and gradient flow
``la_dl.lora``         §8 LoRA
``la_dl.flops``        FLOP counts of a Transformer encoder
``la_dl.exercises``    checks a student runs on the exercises
``la_dl.measure``      wall time and memory of a call (notebooks and benchmarks)
=====================  ==============================================
"""

__version__ = "0.1.0"
