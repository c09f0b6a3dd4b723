"""Stack config as the engine hands it to the program: the only code that touches Pulumi runtime internals.

The engine passes every config value, the Pulumi.yaml defaults included, to the Python SDK, which keeps them
in one map. Reading that map (rather than one `Config.get` per known key) is what lets validation see, and
reject, a misspelt key; the SDK has no public API for it, so both readers live here, in one place.
"""

from pulumi.runtime.config import CONFIG, get_config_env, get_config_secret_keys_env, is_config_secret

from canary.release.args import CanaryReleaseArgs, args_from_config
from canary.release.run_error import as_run_error
from canary.release.validate import parse_config


def read_secret_keys(project: str) -> frozenset[str]:
    """The keys of `project`'s config that were set as secrets, namespace stripped (for parse_config)."""
    prefix = f"{project}:"
    merged = {**get_config_env(), **CONFIG.get()}
    # The language host may pass PULUMI_CONFIG_SECRET_KEYS=null (no secret keys): the SDK then returns None.
    secret = set(get_config_secret_keys_env() or []) | {key for key in merged if is_config_secret(key)}
    return frozenset(key[len(prefix) :] for key in secret if key.startswith(prefix))


def read_stack_config(project: str) -> dict[str, str]:
    """The program's config in `project`'s namespace as parse_config wants it: key -> string.

    The engine passes every config value, the Pulumi.yaml defaults included, to the Python SDK, which keeps
    them in one map; reading that whole map (rather than one `Config.get` per known key) is what lets
    parse_config see, and reject, a misspelt key. Keys of other namespaces (e.g. `kubernetes:context`)
    belong to providers and are left out.
    """
    prefix = f"{project}:"
    merged = {**get_config_env(), **CONFIG.get()}
    return {key[len(prefix) :]: str(value) for key, value in merged.items() if key.startswith(prefix)}


@as_run_error
def stack_args(project: str) -> CanaryReleaseArgs:
    """The release's args from this stack's config, validated in full first (misspelt keys, a tlsKey not
    set as a secret, and every rule of parse_config), so bad config stops the program before anything is
    registered; secret values stay secret Outputs in the args."""
    raw = read_stack_config(project)
    parse_config(raw, read_secret_keys(project))
    return args_from_config(raw)
