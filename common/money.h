/* money.h - the figures of accounting as people and spreadsheets read
 * them, exactly: money kept in micro-units shown rounded to a currency's
 * minor digits, milliseconds shown as seconds or hours, GPU-hours and
 * months parsed strictly, CSV cells quoted and defused. Integers only,
 * never a double: the same record prints the same text on every machine,
 * to the smallest currency unit. Pure (no I/O). */
#ifndef JZ_MONEY_H
#define JZ_MONEY_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

/* Minor digits a currency may have (micro-units hold at most 6). */
#define MONEY_DIGITS_MAX 6
/* The most GPU-hours one grant (or one change of it) may give or take:
 * far above any programme's award, far below what an int64 of GPU-ms holds. */
#define MONEY_GPU_HOURS_MAX 100000000LL

/* micro (millionths of the unit) rounded half-up to d minor digits: the
 * count of minor units (d above MONEY_DIGITS_MAX counts as it). */
uint64_t money_minor(uint64_t micro, unsigned d);
/* minor units as a decimal with exactly d digits after the point ("12.30";
 * d 0: "12"), appended to b. */
void money_put_minor(buf *b, uint64_t minor, unsigned d);
/* money_put_minor(money_minor(micro, d), d). */
void money_put_micro(buf *b, uint64_t micro, unsigned d);
/* Thousandths as an exact decimal with at most 3 digits after the point,
 * trailing zeros dropped: milliseconds as seconds ("90", "90.5", "0.001"). */
void money_put_milli(buf *b, uint64_t milli);
/* Signed milliseconds as hours with `decimals` (0 to 6) digits after the
 * point, rounded half away from zero ("-1.25"). */
void money_put_hours(buf *b, int64_t ms, unsigned decimals);
/* num / den as a percentage with 2 decimals, rounded half-up ("62.50");
 * den 0: nothing appended and -1, else 0. */
int money_put_pct(buf *b, uint64_t num, uint64_t den);

/* "12", "0.5", "1000.125", "-20" (with allow_negative) into thousandths:
 * digits, then at most 3 after a point, nothing else (no sign but a
 * leading '-', no spaces, no exponent); not zero; its size at most max
 * thousandths. 0, or -1. */
int money_parse_milli(const char *s, bool allow_negative, int64_t max, int64_t *out);
/* "YYYY-MM" exactly: a year from 1970 to 9999, a month from 01 to 12.
 * 0, or -1. */
int money_parse_month(const char *s, int *year, int *month);
/* The Unix ms of the first moment of that month, UTC. */
int64_t money_month_start_ms(int year, int month);

/* One CSV cell (RFC 4180): quoted when it holds a comma, a quote, CR or
 * LF (quotes doubled). Text that a spreadsheet would take for a formula
 * (first character = + - @, a tab or CR) gets a leading apostrophe, so a
 * job named "=HYPERLINK(...)" stays text. For other people's text; our
 * own numbers go in as they are. */
void money_csv_cell(buf *b, const char *s);
/* s with & < > " ' as HTML entities, for text and attribute values alike. */
void money_html(buf *b, const char *s);

#endif
