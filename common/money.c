/* money.c - accounting's figures, printed and parsed exactly from integers. */
#include "money.h"

#include <string.h>

static const uint64_t money__pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

uint64_t money_minor(uint64_t micro, unsigned d)
{
    if (d > MONEY_DIGITS_MAX)
        d = MONEY_DIGITS_MAX;
    uint64_t unit = money__pow10[MONEY_DIGITS_MAX - d];
    /* Half-up: (micro + unit/2) / unit, without overflowing near the top. */
    return micro / unit + (micro % unit >= (unit + 1) / 2 && unit > 1 ? 1 : 0);
}

void money_put_minor(buf *b, uint64_t minor, unsigned d)
{
    if (d > MONEY_DIGITS_MAX)
        d = MONEY_DIGITS_MAX;
    uint64_t p = money__pow10[d];
    if (d == 0)
        buf_printf(b, "%llu", (unsigned long long)minor);
    else
        buf_printf(b, "%llu.%0*llu", (unsigned long long)(minor / p), (int)d,
                   (unsigned long long)(minor % p));
}

void money_put_micro(buf *b, uint64_t micro, unsigned d)
{
    money_put_minor(b, money_minor(micro, d), d);
}

void money_put_milli(buf *b, uint64_t milli)
{
    uint64_t frac = milli % 1000;
    buf_printf(b, "%llu", (unsigned long long)(milli / 1000));
    if (frac == 0)
        return;
    char f[8];
    int n = 3;
    f[0] = (char)('0' + frac / 100);
    f[1] = (char)('0' + frac / 10 % 10);
    f[2] = (char)('0' + frac % 10);
    while (n > 0 && f[n - 1] == '0')
        n--;
    buf_printf(b, ".%.*s", n, f);
}

void money_put_hours(buf *b, int64_t ms, unsigned decimals)
{
    if (decimals > 6)
        decimals = 6;
    bool neg = ms < 0;
    /* The magnitude, safe for INT64_MIN. */
    uint64_t mag = neg ? (uint64_t)(-(ms + 1)) + 1 : (uint64_t)ms;
    uint64_t p = money__pow10[decimals];
    /* hours x 10^decimals = ms x 10^decimals / 3600000, rounded half-up
     * on the magnitude; split so that nothing overflows. */
    uint64_t whole = mag / 3600000, rest = mag % 3600000;
    uint64_t frac = (rest * p + 1800000) / 3600000; /* rest * p < 3.6e12 */
    if (frac == p) {
        whole++;
        frac = 0;
    }
    bool zero = whole == 0 && frac == 0;
    if (decimals == 0)
        buf_printf(b, "%s%llu", neg && !zero ? "-" : "", (unsigned long long)whole);
    else
        buf_printf(b, "%s%llu.%0*llu", neg && !zero ? "-" : "", (unsigned long long)whole, (int)decimals,
                   (unsigned long long)frac);
}

int money_put_pct(buf *b, uint64_t num, uint64_t den)
{
    if (den == 0)
        return -1;
    /* Hundredths of a percent: num x 10000 / den, half-up, in 128 bits. */
    unsigned __int128 h = ((unsigned __int128)num * 10000 + den / 2) / den;
    uint64_t v = h > UINT64_MAX ? UINT64_MAX : (uint64_t)h;
    buf_printf(b, "%llu.%02llu", (unsigned long long)(v / 100), (unsigned long long)(v % 100));
    return 0;
}

int money_parse_milli(const char *s, bool allow_negative, int64_t max, int64_t *out)
{
    if (!s)
        return -1;
    bool neg = false;
    if (*s == '-') {
        if (!allow_negative)
            return -1;
        neg = true;
        s++;
    }
    int64_t whole = 0;
    const char *p = s;
    /* The whole part: at least one digit, and no more than max allows. */
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (*p - '0');
        if (whole > max / 1000 + 1)
            return -1;
    }
    if (p == s)
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        const char *f = ++p;
        for (; *p >= '0' && *p <= '9'; p++)
            if (p - f < 3)
                frac = frac * 10 + (*p - '0');
            else
                return -1; /* a fourth decimal: finer than a GPU-hour's thousandth */
        if (p == f)
            return -1;
        for (long k = (long)(p - f); k < 3; k++)
            frac *= 10;
    }
    if (*p)
        return -1;
    int64_t v = whole * 1000 + frac;
    if (v == 0 || v > max)
        return -1;
    *out = neg ? -v : v;
    return 0;
}

int money_parse_month(const char *s, int *year, int *month)
{
    if (!s || strlen(s) != 7 || s[4] != '-')
        return -1;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    if (y < 1970 || m < 1 || m > 12)
        return -1;
    *year = y;
    *month = m;
    return 0;
}

int64_t money_month_start_ms(int year, int month)
{
    /* Days from 1970-01-01 to the first of the month (proleptic
     * Gregorian), without timegm's dependence on the environment. */
    int64_t y = year, m = month;
    if (m <= 2) {
        y--;
        m += 12;
    }
    int64_t days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5 + 1 - 719469;
    return days * 86400000;
}

void money_csv_cell(buf *b, const char *s)
{
    if (!s)
        s = "";
    bool formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r';
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        buf_putc(b, '"');
    if (formula)
        buf_putc(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            buf_putc(b, '"');
        buf_putc(b, *p);
    }
    if (quote)
        buf_putc(b, '"');
}

void money_html(buf *b, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '&':
            buf_puts(b, "&amp;");
            break;
        case '<':
            buf_puts(b, "&lt;");
            break;
        case '>':
            buf_puts(b, "&gt;");
            break;
        case '"':
            buf_puts(b, "&quot;");
            break;
        case '\'':
            buf_puts(b, "&#39;");
            break;
        default:
            buf_putc(b, *p);
            break;
        }
    }
}
