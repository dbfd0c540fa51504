"""Safe input and output: only regular files, atomic writes, capped downloads, a restricted unpickler,
and bounded descriptions of whatever untrusted code or files hand back.

It sits below everything else and knows nothing of networks or configs.
"""
