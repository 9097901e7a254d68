"""Wrong answers for chapter 02 (see README.md in this folder)."""

_INNER_HEAD = '''from torch.func import functional_call


def inner_adapt(model, params, x, y, lr, steps=1, loss_fn=F.mse_loss):
'''

_FIRST_HEAD = '''def first_order_adapt(model, params, x, y, lr, steps=1, loss_fn=F.mse_loss):
'''

_PROTO_HEAD = '''def proto_logits(support_emb, support_y, query_emb, n_way):
'''

WRONG_ANSWERS = [
    # ------------------------------------------------------------------ ex-inner-adapt
    ("ex-inner-adapt", "no create_graph: first-order meta-gradient where second order is asked",
     _INNER_HEAD + '''    fast = dict(params)
    for _ in range(steps):
        loss = loss_fn(functional_call(model, fast, (x,)), y)
        grads = torch.autograd.grad(loss, list(fast.values()))
        fast = {k: w - lr * g for (k, w), g in zip(fast.items(), grads)}
    return fast
''', ["test-inner-adapt"]),
    ("ex-inner-adapt", "off by one: steps + 1 inner steps",
     _INNER_HEAD + '''    fast = dict(params)
    for _ in range(steps + 1):
        loss = loss_fn(functional_call(model, fast, (x,)), y)
        grads = torch.autograd.grad(loss, list(fast.values()), create_graph=True)
        fast = {k: w - lr * g for (k, w), g in zip(fast.items(), grads)}
    return fast
''', ["test-inner-adapt"]),
    ("ex-inner-adapt", "delegates to the engine's utils.learners.inner_loop.adapt",
     _INNER_HEAD + '''    from utils.learners.inner_loop import adapt
    return adapt(model, (params, {}), (x, y), steps=steps, lr=lr)
''', ["test-inner-adapt"]),

    # ------------------------------------------------------------------ ex-first-order
    ("ex-first-order", "keeps the second-order graph (create_graph=True)",
     _FIRST_HEAD + '''    fast = dict(params)
    for _ in range(steps):
        loss = loss_fn(torch.func.functional_call(model, fast, (x,)), y)
        grads = torch.autograd.grad(loss, list(fast.values()), create_graph=True)
        fast = {k: w - lr * g for (k, w), g in zip(fast.items(), grads)}
    return fast
''', ["test-first-order"]),
    ("ex-first-order", "detaches phi itself: no path back to theta",
     _FIRST_HEAD + '''    fast = dict(params)
    for _ in range(steps):
        loss = loss_fn(torch.func.functional_call(model, fast, (x,)), y)
        grads = torch.autograd.grad(loss, list(fast.values()))
        fast = {k: (w - lr * g).detach().requires_grad_() for (k, w), g in zip(fast.items(), grads)}
    return fast
''', ["test-first-order"]),
    ("ex-first-order", "delegates to the engine's utils.learners.inner_loop.adapt(first_order=True)",
     _FIRST_HEAD + '''    from utils.learners.inner_loop import adapt
    return adapt(model, (params, {}), (x, y), steps=steps, lr=lr, first_order=True)
''', ["test-first-order"]),

    # ------------------------------------------------------------------ ex-proto-logits
    ("ex-proto-logits", "assumes the support is sorted by class (reshape instead of masks)",
     _PROTO_HEAD + '''    protos = support_emb.reshape(n_way, -1, support_emb.shape[-1]).mean(1)
    return -((query_emb[:, None, :] - protos[None, :, :]) ** 2).sum(-1)
''', ["test-proto-logits"]),
    ("ex-proto-logits", "Euclidean distance, not squared",
     _PROTO_HEAD + '''    protos = torch.stack([support_emb[support_y == c].mean(0) for c in range(n_way)])
    return -torch.cdist(query_emb, protos)
''', ["test-proto-logits"]),
    ("ex-proto-logits", "delegates to the engine's utils.learners.metric.protonet_logits",
     _PROTO_HEAD + '''    from utils.learners import protonet_logits
    return protonet_logits(support_emb, support_y, query_emb, n_way)
''', ["test-proto-logits"]),

    # ------------------------------------------------------------------ ex-when-transfer
    ("ex-when-transfer", "(a) sinusoids", 'ANSWER_TRANSFER = "a"\n', ["test-when-transfer"]),
    ("ex-when-transfer", "(b) never", 'ANSWER_TRANSFER = "b"\n', ["test-when-transfer"]),
    ("ex-when-transfer", "(c) single step", 'ANSWER_TRANSFER = "c"\n', ["test-when-transfer"]),
]
