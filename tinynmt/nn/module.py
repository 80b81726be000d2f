"""Module, Parameter and ModuleList: the containers that layers and models are built from."""
import numpy as np

from ..autograd import Tensor
from ..backend import check_device, to_device, to_numpy


class Parameter(Tensor):
    """A tensor that a Module owns and an optimizer updates (requires_grad=True)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device={self.device!r})"


class Module:
    """Base class: Parameters and Modules assigned as attributes are registered by name."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value      # a replaced parameter keeps its place
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:   # anything else (None, say) under a registered name unregisters it
            self.__dict__.get("_parameters", {}).pop(name, None)
            self.__dict__.get("_modules", {}).pop(name, None)
        object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    # ----- walking the tree
    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every submodule, depth first."""
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self):
        """(dotted name, parameter) pairs, each shared parameter once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def apply(self, fn):
        """Call fn on every submodule, then on self (as PyTorch does)."""
        for module in self._modules.values():
            module.apply(fn)
        fn(self)
        return self

    # ----- state
    def state_dict(self):
        """Every parameter as a NumPy array, keyed by its dotted name (shared ones under each name)."""
        state = {}
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                state[f"{prefix}.{name}" if prefix else name] = to_numpy(param.data).copy()
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters, checking names, shapes and (when strict) completeness."""
        own = {}
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                own[f"{prefix}.{name}" if prefix else name] = param
        if strict:
            missing = sorted(set(own) - set(state))
            unexpected = sorted(set(state) - set(own))
            if missing or unexpected:
                raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
        for name, array in state.items():
            if name not in own:
                continue
            param = own[name]
            if tuple(array.shape) != param.shape:
                raise ValueError(f"state_dict: {name} has shape {tuple(array.shape)}, "
                                 f"the model expects {param.shape}")
            # into the parameter's own array, so it keeps its dtype and device
            param.data[...] = to_device(np.asarray(array, dtype=param.dtype), param.device)
        return self

    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, device):
        """Move every parameter's array (and gradient) to `device`; the Parameter objects stay."""
        check_device(device)
        for param in self.parameters():
            param.data = to_device(param.data, device)
            if param.grad is not None:
                param.grad = to_device(param.grad, device)
        for module in self.modules():
            if hasattr(module, "generator") and module.generator is not None:
                module.generator.to(device)
        return self

    @property
    def device(self):
        """The device of the first parameter ('cpu' for a module without any)."""
        params = self.parameters()
        return params[0].device if params else "cpu"

    def zero_grad(self):
        for param in self.parameters():
            param.grad = None

    def num_parameters(self):
        """How many numbers the optimizer trains (shared parameters counted once)."""
        return sum(p.size for p in self.parameters())


class ModuleList(Module):
    """A list of modules, registered under the names '0', '1', ..."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __iter__(self):
        return iter(self._modules.values())

    def __len__(self):
        return len(self._modules)
