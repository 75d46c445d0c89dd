/* A 16550A UART (the PC's COM ports), KVM-free: it sees the PIO bus, an
 * irq_line and an output fd.
 *
 * Output never blocks the vCPU thread that writes THR, whoever holds the
 * other end of the output fd and however slowly it reads: THR and the
 * transmitter always read as empty. The fd may be anything, blocking or
 * not; the UART writes it without ever waiting:
 *  - a regular file or block device is written as it is (nothing there
 *    waits for a reader);
 *  - a socket is written with send(MSG_DONTWAIT);
 *  - a pipe, FIFO or terminal that is not O_NONBLOCK is reopened through
 *    /proc/self/fd as a private non-blocking open file description, so the
 *    flags of the one shared with other processes (a shell's terminal, a
 *    harness's pipe) are left alone; where that fails, each write is
 *    preceded by a zero-timeout poll(POLLOUT).
 * A byte the fd does not take at once is held in a NS16550_TX_BUF output
 * buffer, written out with the next byte or by ns16550_flush() (the owner
 * calls it from its event loop); a byte that does not fit there either is
 * dropped and counted (ns16550_dropped), and the first such drop is logged
 * once. Other write errors drop and count too, logged rate-limited. An
 * output limit (out_limit) stops writing after that many bytes, said once.
 *
 * Input arrives from the event thread through ns16550_input into a 4 KiB
 * receive buffer whose head is the guest-visible 16-byte FIFO. The RX data
 * interrupt is raised whenever data is buffered (no trigger levels or
 * character timeout). Only overrun (in loopback mode) is reported as a line
 * status error.
 *
 * The interrupt is level-triggered: irq_line_set() is called, under the
 * device lock, each time the computed interrupt state changes.
 *
 * Threads: the bus handlers run on any vCPU thread, ns16550_input and
 * ns16550_rx_space on the event thread; a mutex inside serialises them.
 * Lock order: ns16550 lock, then whatever irq.set takes; rx_ready is called
 * with no lock held. */
#ifndef KVMRUN_NS16550_H
#define KVMRUN_NS16550_H

#include <stddef.h>
#include <stdint.h>

#include "devices/bus.h"
#include "devices/irq.h"
#include "lib/log.h"
#include "lib/state.h"

#define NS16550_NR_PORTS 8
#define NS16550_RX_BUF   4096 /* bytes ns16550_input can hold, FIFO included */
#define NS16550_TX_BUF   (64 * 1024) /* output held while the reader is slow */

struct ns16550;

struct ns16550_params {
	struct irq_line irq;        /* e.g. GSI_COM1 */
	int out_fd;                 /* THR bytes go here; -1 discards them.
				     * Borrowed: never closed by the UART */
	uint64_t out_limit;         /* write at most this many bytes; 0: no limit */
	const char *out_limit_key;  /* names the limit when it is reached
				     * ("serial.max_size"); may be NULL */
	const struct logger *log;   /* may be NULL: silent */
	const char *name;           /* "com1", for messages; copied */
	/* Optional: called (from a vCPU thread, no lock held) once receive
	 * space frees up after ns16550_input took fewer bytes than offered,
	 * so the event thread can resume reading its input. */
	void (*rx_ready)(void *cookie);
	void *rx_cookie;
};

/* Allocates a UART in its reset state and maps [base, base+8) on @pio.
 * Returns 0 and sets *out, -ENOMEM, or bus_register's error. An out_fd
 * that is not open is logged and output discarded. Call before vCPUs run
 * (the bus is not locked). */
__attribute__((warn_unused_result))
int ns16550_create(struct bus *pio, uint16_t base,
		   const struct ns16550_params *p, struct ns16550 **out);

/* Back to power-on state: registers cleared, receive buffer emptied,
 * interrupt line lowered. Safe at any time. */
void ns16550_reset(struct ns16550 *u);

/* Frees the UART. The bus keeps no way to unmap it, so call this only once
 * nothing dispatches on @pio any more (vCPUs and event thread stopped).
 * Does not close out_fd. NULL is a no-op. */
void ns16550_destroy(struct ns16550 *u);

/* Event thread: queues up to @len received bytes and returns how many were
 * taken. Fewer than @len means the buffer is full (or the UART is in
 * loopback mode, where the receive line is disconnected): stop reading the
 * input until rx_ready fires or ns16550_rx_space is non-zero. */
size_t ns16550_input(struct ns16550 *u, const uint8_t *buf, size_t len);

/* Bytes ns16550_input would take right now. */
size_t ns16550_rx_space(struct ns16550 *u);

/* Output bytes dropped so far: the output buffer was full, a write
 * failed, or out_limit was reached. */
uint64_t ns16550_dropped(struct ns16550 *u);

/* Any thread: writes what the output buffer holds, as far as the output
 * fd takes it without waiting. Returns the bytes still held. */
size_t ns16550_flush(struct ns16550 *u);

/* Saved state (section "uart.com1" on the board), version
 * NS16550_STATE_VERSION. A save captures every guest-visible register
 * (IER, FCR, LCR, MCR, SCR, the divisor latch DLL/DLM, the sticky LSR
 * error bits, MSR with its delta bits, the latched THRE interrupt), the
 * receive buffer's bytes in order (the FIFO and what waits behind it),
 * whether the event thread is owed rx_ready, and the output not yet
 * written to the output fd (it goes to the new fd after a restore). The
 * interrupt level is not stored: it follows from the registers.
 *
 * ns16550_save writes the payload of an open section; any thread, takes
 * the lock. ns16550_load reads it back from @r, checks every value (IER,
 * MCR and FCR bits that do not exist, LSR bits other than OE, byte counts
 * beyond the buffers) and applies it only if the whole payload is valid
 * (state_r_finish): else it returns -EINVAL with the reason in r->err and
 * leaves the UART as it was. On success it drives the interrupt line to
 * the restored level. Call before vCPUs run. */
#define NS16550_STATE_VERSION 1
void ns16550_save(struct ns16550 *u, struct state_w *w);
__attribute__((warn_unused_result))
int ns16550_load(struct ns16550 *u, struct state_r *r);

#endif
