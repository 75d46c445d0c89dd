#include "devices/acpi_pm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>


#define RESET_RST_CPU 0x04

/* PM1_CNT bits that keep a value: SCI_EN (forced 1), BM_RLS (1),
 * SLP_TYP. GBL_RLS (2) and SLP_EN (13) are write-only and read as 0. */
#define PM1_CNT_KEEP (ACPI_PM1_CNT_SCI_EN | (1u << 1) | (7u << ACPI_PM1_CNT_SLP_TYP_SHIFT))
/* PM1_EN bits that exist: TMR, GBL, PWRBTN, SLPBTN, RTC, PCIEXP_WAKE_DIS. */
#define PM1_EN_MASK  0x4721u

struct acpi_pm {
	struct acpi_pm_params p;
	pthread_mutex_t lock; /* guards everything below */
	uint16_t sts, en, cnt;
	uint8_t reset_reg;
	bool sci_level;
	struct log_ratelimit rl;
};

/* Called with the lock held; returns the SCI level to apply after unlock,
 * or -1 when it did not change. */
static int sci_update(struct acpi_pm *pm)
{
	bool level = (pm->sts & pm->en) != 0;
	if (level == pm->sci_level)
		return -1;
	pm->sci_level = level;
	return level;
}

static void sci_apply(struct acpi_pm *pm, int level)
{
	if (level >= 0)
		irq_line_set(&pm->p.sci, level);
}

static void evt_read(void *cookie, uint64_t off, void *data, unsigned len)
{
	struct acpi_pm *pm = cookie;
	uint8_t *d = data;
	pthread_mutex_lock(&pm->lock);
	uint8_t regs[ACPI_PM1_EVT_LEN] = {
		(uint8_t)pm->sts, (uint8_t)(pm->sts >> 8),
		(uint8_t)pm->en, (uint8_t)(pm->en >> 8),
	};
	pthread_mutex_unlock(&pm->lock);
	for (unsigned i = 0; i < len; i++)
		d[i] = off + i < ACPI_PM1_EVT_LEN ? regs[off + i] : 0xff;
}

static void evt_write(void *cookie, uint64_t off, const void *data, unsigned len)
{
	struct acpi_pm *pm = cookie;
	const uint8_t *d = data;
	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len && off + i < ACPI_PM1_EVT_LEN; i++) {
		unsigned reg = (unsigned)(off + i);
		unsigned shift = (reg & 1) * 8;
		uint16_t v = (uint16_t)(d[i] << shift);
		if (reg < 2)
			pm->sts &= (uint16_t)~v;          /* write 1 to clear */
		else
			pm->en = (uint16_t)((pm->en & ~(0xffu << shift)) |
					    (v & PM1_EN_MASK));
	}
	int level = sci_update(pm);
	pthread_mutex_unlock(&pm->lock);
	sci_apply(pm, level);
}

static void cnt_read(void *cookie, uint64_t off, void *data, unsigned len)
{
	struct acpi_pm *pm = cookie;
	uint8_t *d = data;
	pthread_mutex_lock(&pm->lock);
	uint16_t v = (uint16_t)(pm->cnt | ACPI_PM1_CNT_SCI_EN);
	pthread_mutex_unlock(&pm->lock);
	for (unsigned i = 0; i < len; i++)
		d[i] = off + i < ACPI_PM1_CNT_LEN ? (uint8_t)(v >> (8 * (off + i))) : 0xff;
}

static void cnt_write(void *cookie, uint64_t off, const void *data, unsigned len)
{
	struct acpi_pm *pm = cookie;
	const uint8_t *d = data;
	bool off_req = false;
	unsigned slp_typ = 0;

	pthread_mutex_lock(&pm->lock);
	/* merge the bytes written into the current value, then act on it */
	uint16_t v = pm->cnt;
	for (unsigned i = 0; i < len && off + i < ACPI_PM1_CNT_LEN; i++) {
		unsigned shift = (unsigned)(off + i) * 8;
		v = (uint16_t)((v & ~(0xffu << shift)) | ((unsigned)d[i] << shift));
	}
	pm->cnt = (uint16_t)((v & PM1_CNT_KEEP) | ACPI_PM1_CNT_SCI_EN);
	if (v & ACPI_PM1_CNT_SLP_EN) {
		slp_typ = (v >> ACPI_PM1_CNT_SLP_TYP_SHIFT) & 7;
		off_req = slp_typ == ACPI_PM_SLP_TYP_S5;
	}
	pthread_mutex_unlock(&pm->lock);

	if (off_req) {
		log_info(pm->p.log, "acpi_pm", "guest entered S5: power off");
		pm->p.poweroff(pm->p.cookie);
	} else if (v & ACPI_PM1_CNT_SLP_EN) {
		log_ratelimited(pm->p.log, &pm->rl, "acpi_pm",
				"unsupported sleep type %u ignored", slp_typ);
	}
}

void acpi_pm_reset_write(struct acpi_pm *pm, uint8_t value)
{
	pthread_mutex_lock(&pm->lock);
	pm->reset_reg = (uint8_t)(value & ~RESET_RST_CPU);
	pthread_mutex_unlock(&pm->lock);
	if (value & RESET_RST_CPU) {
		log_info(pm->p.log, "acpi_pm", "guest wrote reset register 0x%02x: reset", value);
		pm->p.reset(pm->p.cookie);
	}
}

static void reset_read(void *cookie, uint64_t off, void *data, unsigned len)
{
	struct acpi_pm *pm = cookie;
	pthread_mutex_lock(&pm->lock);
	uint8_t v = pm->reset_reg;
	pthread_mutex_unlock(&pm->lock);
	memset(data, 0xff, len);
	if (off == 0)
		*(uint8_t *)data = v;
}

static void reset_write(void *cookie, uint64_t off, const void *data, unsigned len)
{
	if (off == 0 && len >= 1)
		acpi_pm_reset_write(cookie, *(const uint8_t *)data);
}

static const struct bus_ops evt_ops = { .read = evt_read, .write = evt_write };
static const struct bus_ops cnt_ops = { .read = cnt_read, .write = cnt_write };
static const struct bus_ops reset_ops = { .read = reset_read, .write = reset_write };

void acpi_pm_reset(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts = 0;
	pm->en = 0;
	pm->cnt = ACPI_PM1_CNT_SCI_EN;
	pm->reset_reg = 0;
	int level = sci_update(pm);
	pthread_mutex_unlock(&pm->lock);
	sci_apply(pm, level);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= ACPI_PM1_STS_PWRBTN;
	int level = sci_update(pm);
	pthread_mutex_unlock(&pm->lock);
	sci_apply(pm, level);
}

/* All or nothing: a failure leaves no port pointing at @pm. */
static int register_ports(struct bus *pio, struct acpi_pm *pm)
{
	int rc = bus_register(pio, pm->p.evt_port, ACPI_PM1_EVT_LEN, &evt_ops, pm, "acpi-pm1a-evt");
	if (rc)
		return rc;
	rc = bus_register(pio, pm->p.cnt_port, ACPI_PM1_CNT_LEN, &cnt_ops, pm, "acpi-pm1a-cnt");
	if (rc == 0 && !pm->p.reset_port_forwarded) {
		rc = bus_register(pio, pm->p.reset_port, 1, &reset_ops, pm, "acpi-reset");
		if (rc)
			(void)bus_unmap(pio, pm->p.cnt_port, ACPI_PM1_CNT_LEN);
	}
	if (rc)
		(void)bus_unmap(pio, pm->p.evt_port, ACPI_PM1_EVT_LEN);
	return rc;
}

int acpi_pm_create(struct bus *pio, const struct acpi_pm_params *p,
		   struct acpi_pm **out)
{
	if (!p->poweroff || !p->reset || !p->log)
		return -EINVAL;
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	pm->p = *p;
	pm->cnt = ACPI_PM1_CNT_SCI_EN;
	int rc = pthread_mutex_init(&pm->lock, NULL);
	if (rc) {
		free(pm);
		return -rc;
	}
	rc = register_ports(pio, pm);
	if (rc) {
		log_err(p->log, "acpi_pm", "cannot register ports: %s", strerror(-rc));
		pthread_mutex_destroy(&pm->lock);
		free(pm);
		return rc;
	}
	*out = pm;
	return 0;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

/* --- saved state (see acpi_pm.h) --- */

/* PM1_STS bits this model ever sets */
#define PM1_STS_MASK ACPI_PM1_STS_PWRBTN

void acpi_pm_save(struct acpi_pm *pm, struct state_w *w)
{
	pthread_mutex_lock(&pm->lock);
	state_put_u16(w, pm->sts);
	state_put_u16(w, pm->en);
	state_put_u16(w, pm->cnt);
	state_put_u8(w, pm->reset_reg);
	pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_load(struct acpi_pm *pm, struct state_r *r)
{
	uint16_t sts = state_get_u16(r), en = state_get_u16(r), cnt = state_get_u16(r);
	uint8_t reset_reg = state_get_u8(r);
	if (sts & ~PM1_STS_MASK)
		state_fail(r, "PM1_STS is %#x: bits %#x are never set", sts, sts & ~PM1_STS_MASK);
	if (en & ~PM1_EN_MASK)
		state_fail(r, "PM1_EN is %#x: bits %#x do not exist", en, en & ~PM1_EN_MASK);
	if ((cnt & ~PM1_CNT_KEEP) || !(cnt & ACPI_PM1_CNT_SCI_EN))
		state_fail(r, "PM1_CNT is %#x: SCI_EN must be set, only bits %#x kept", cnt,
			   PM1_CNT_KEEP);
	if (reset_reg & RESET_RST_CPU)
		state_fail(r, "reset register is %#x: RST_CPU is never kept", reset_reg);
	int rc = state_r_finish(r);
	if (rc)
		return rc;
	pthread_mutex_lock(&pm->lock);
	pm->sts = sts;
	pm->en = en;
	pm->cnt = cnt;
	pm->reset_reg = reset_reg;
	int level = sci_update(pm);
	pthread_mutex_unlock(&pm->lock);
	sci_apply(pm, level);
	return 0;
}
