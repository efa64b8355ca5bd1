"""tito.machine and module 19 both name the CPU: tito's copy must load before NumPy and ship in
the student kit without tinytorch, module 19's is the lesson's. They must agree."""
from tito.machine import cpu_model


def test_tito_and_module_19_name_the_same_cpu():
    from tinytorch.benchmarking.benchmark import cpu_model as lesson_cpu_model

    assert cpu_model() == lesson_cpu_model() != ""
