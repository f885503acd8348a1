"""What every managed (lifecycle) node of ours does at configure, written once."""

from __future__ import annotations

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn


class CheckedConfigureNode(LifecycleNode):
    """``on_configure`` runs the subclass's ``_configure()``; any failure, whatever raised it, tears down what was
    created (``_teardown()``), keeps the reason in ``configure_error``, logs it and returns FAILURE, so a node
    never ends half-configured and a launcher or ``humanoid-rl sim/real`` can name why. Cleanup, shutdown and
    error all end in ``_teardown()``; shutdown first gives the node ``_on_shutdown_while_active()`` to leave the
    joints safe."""

    configure_error: str = ""
    _configured: bool = False
    _active: bool = False

    @property
    def lifecycle_state(self) -> str:
        if self._active:
            return "active"
        return "inactive" if self._configured else "unconfigured"

    def _configure(self) -> None:
        raise NotImplementedError

    def _teardown(self) -> None:
        raise NotImplementedError

    def _on_shutdown_while_active(self) -> None:
        """Shutdown straight from ACTIVE (Ctrl-C, launch exit): what a deactivation would have sent."""

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # noqa: BLE001 - every failure must end in FAILURE with its reason
            self._teardown()
            self.configure_error = str(exc)
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.configure_error = ""
        self._configured = True
        return super().on_configure(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self._on_shutdown_while_active()
        self._teardown()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        super().destroy_node()
        # rclpy's LifecycleNode.destroy_node leaves its state machine alive, and the state machine keeps the rcl
        # node, hence the process's DDS participant: the node stayed in everyone's graph, and a process that then
        # exited (os._exit after Ctrl-C) killed Fast DDS threads mid-send, leaving shared-memory port locks held
        # that the graph's other processes then waited 2-3 s (or for ever) to take.
        machine = getattr(self, "_state_machine", None)  # absent if LifecycleNode.__init__ itself raised
        if machine is not None:
            machine.destroy_when_not_in_use()
