"""Chain errors: a revert decoded to the contract's custom error name and arguments.

web3.py reports a revert as raw selector bytes; callers want to branch on the rule that was
broken (``NotAdmitted``, ``CommitWindowClosed``…), so every revert is turned into a
:class:`ContractRevert` carrying the error's name and decoded arguments.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from market.errors import ChainError

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

PANIC_CODES = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array encoding",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialised internal function",
}


class ContractRevert(ChainError):
    """A contract call or transaction reverted.

    ``error_name`` is the Solidity error's name (``"Error"`` for ``require`` strings,
    ``"Panic"`` for panics, ``"Unknown"`` when the selector is not in the ABI) and ``args``
    its decoded arguments, in declaration order.
    """

    def __init__(
        self,
        error_name: str,
        args: tuple[Any, ...] = (),
        *,
        selector: bytes = b"",
        data: bytes = b"",
        function: str = "",
    ) -> None:
        self.error_name = error_name
        self.selector = selector
        self.data = data
        self.function = function
        where = f" in {function}" if function else ""
        shown = ", ".join(_show(a) for a in args)
        self.message = (
            f"contract reverted{where} with {error_name}({shown}); "
            "the call broke the rule this error is named after — check its arguments and timing"
        )
        super().__init__(self.message)
        # Exception.args normally holds the message; here it holds the decoded error args.
        self.args = tuple(args)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # keep error_name/args right across pickling (multiprocessing)
        return (self.__class__, (self.error_name, self.args), self.__dict__)


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)


def _abi_type(param: dict) -> str:
    """Canonical ABI type of one parameter (tuples spelled out, as selectors need)."""
    t = param["type"]
    if t.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){t[len('tuple') :]}"
    return t


def error_selectors(abi: list[dict]) -> dict[bytes, tuple[str, list[str]]]:
    """Map each custom error's 4-byte selector to its name and argument types."""
    table: dict[bytes, tuple[str, list[str]]] = {}
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [_abi_type(p) for p in item.get("inputs", [])]
        signature = f"{item['name']}({','.join(types)})"
        table[keccak(text=signature)[:4]] = (item["name"], types)
    return table


def decode_revert(
    data: bytes, errors: dict[bytes, tuple[str, list[str]]], function: str = ""
) -> ContractRevert:
    """Turn raw revert data into a :class:`ContractRevert`."""
    selector, body = data[:4], data[4:]
    try:
        if selector == ERROR_STRING_SELECTOR:
            (reason,) = abi_decode(["string"], body)
            return ContractRevert(
                "Error", (reason,), selector=selector, data=data, function=function
            )
        if selector == PANIC_SELECTOR:
            (code,) = abi_decode(["uint256"], body)
            return ContractRevert(
                "Panic",
                (code, PANIC_CODES.get(code, "unknown panic")),
                selector=selector,
                data=data,
                function=function,
            )
        if selector in errors:
            name, types = errors[selector]
            values = tuple(
                to_checksum_address(v) if t == "address" else v
                for t, v in zip(types, abi_decode(types, body), strict=True)
            )
            return ContractRevert(name, values, selector=selector, data=data, function=function)
    except Exception:  # malformed data: fall through to Unknown rather than hide the revert
        pass
    return ContractRevert("Unknown", (data,), selector=selector, data=data, function=function)
