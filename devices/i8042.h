/* The PC's 8042 keyboard controller, only as much as Linux's i8042 driver
 * probes, and its reset line, which is how a guest asks for a reboot.
 *
 * No keyboard or mouse is attached and no interrupt is wired: the
 * controller answers its own commands (command byte 0x20/0x60, self test
 * 0xAA -> 0x55, keyboard interface test 0xAB -> 0x00, port enable/disable
 * 0xA7/0xA8/0xAD/0xAE, output port 0xD0/0xD1, keyboard echo 0xD2); bytes
 * sent to the keyboard are answered 0xFE with the timeout status bit set,
 * bytes sent to the mouse (0xD4) 0xFE from the aux side; the aux loopback
 * 0xD3 answers from the keyboard side and the aux interface test 0xA9
 * reports a stuck clock line, so Linux decides there is no aux port without
 * waiting for timeouts.
 *
 * Command 0xFE (pulse reset line; any 0xF0-0xFF with bit 0 clear) and an
 * output-port write (0xD1) with bit 0 clear call params.reset.
 *
 * Threads: handlers run on any vCPU thread, serialised by a mutex inside;
 * reset is called with no lock held. */
#ifndef KVMRUN_I8042_H
#define KVMRUN_I8042_H

#include "devices/bus.h"
#include "lib/log.h"
#include "lib/state.h"

struct i8042;

struct i8042_params {
	uint16_t data_port, cmd_port; /* 0x60 and 0x64 on a PC */
	void (*reset)(void *cookie); /* guest pulsed the reset line */
	void *cookie;
	const struct logger *log;    /* may be NULL */
};

/* Maps p->data_port and p->cmd_port on @pio. Returns 0
 * and sets *out, -ENOMEM, or bus_register's error. Before vCPUs run. */
__attribute__((warn_unused_result))
int i8042_create(struct bus *pio, const struct i8042_params *p, struct i8042 **out);

/* Back to the state firmware leaves: command byte 0x45, buffers empty. */
void i8042_reset(struct i8042 *k);

/* Frees it once nothing dispatches on @pio any more. NULL is a no-op. */
void i8042_destroy(struct i8042 *k);

/* Saved state (section "i8042"), version I8042_STATE_VERSION. A save
 * captures the status register, the command byte, the output port, the
 * output buffer's byte and the command waiting for its data byte.
 * i8042_load refuses status bits the controller never sets (IBF, parity),
 * a status whose SYS bit disagrees with the command byte's, a keyboard
 * not unlocked, and a pending command that takes no data byte; it applies
 * nothing unless the whole payload is valid (-EINVAL, reason in r->err). */
#define I8042_STATE_VERSION 1
void i8042_save(struct i8042 *k, struct state_w *w);
__attribute__((warn_unused_result))
int i8042_load(struct i8042 *k, struct state_r *r);

#endif
