"""The container every step runs (KFP; imported by the steps' ``component.py`` only)."""

from kfp import dsl

from components.images import image


def program_spec(runtime: str, step: str) -> dsl.ContainerSpec:
    """The runtime's image running ``python -m components.<step> --executor-input {{$}}``.

    The program reads KFP's executor input and writes the executor output itself
    (``components/kfp_io``), so it runs the same under kfp.local and the KFP backend.
    """
    return dsl.ContainerSpec(image=image(runtime), command=["python", "-m", f"components.{step}"],
                             args=["--executor-input", "{{$}}"])
