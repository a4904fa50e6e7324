/* test_money.c - accounting's figures (common/money.c): money rounded
 * half-up to the minor unit, seconds and hours exactly, --gpu-hours and
 * --month parsed strictly, CSV cells quoted and defused, HTML escaped. */
#include <stdint.h>

#include "../../common/json.h"
#include "../../common/money.h"
#include "test.h"

/* What put appended, as a string (b reset first). */
#define PUT(b, call) (buf_reset(&(b)), (call), buf_str(&(b)))

TEST(money_rounds_half_up_to_the_minor_unit)
{
    CHECK_EQ_INT(money_minor(0, 2), 0);
    CHECK_EQ_INT(money_minor(4999, 2), 0);      /* 0.004999 */
    CHECK_EQ_INT(money_minor(5000, 2), 1);      /* 0.005: half goes up */
    CHECK_EQ_INT(money_minor(1234567, 2), 123); /* 1.234567 -> 1.23 */
    CHECK_EQ_INT(money_minor(1235000, 2), 124);
    CHECK_EQ_INT(money_minor(1499999, 0), 1);
    CHECK_EQ_INT(money_minor(1500000, 0), 2);
    CHECK_EQ_INT(money_minor(1234567, 3), 1235);
    CHECK_EQ_INT(money_minor(1234567, 6), 1234567);
    CHECK_EQ_INT(money_minor(1234567, 9), 1234567); /* above 6: as 6 */
    /* The top of the range does not wrap around. */
    CHECK(money_minor(UINT64_MAX, 2) == UINT64_MAX / 10000);
    CHECK(money_minor(18446744073709545000ull, 2) == 1844674407370955ull);
    buf b = BUF_INIT;
    CHECK_EQ_STR(PUT(b, money_put_micro(&b, 1234567, 2)), "1.23");
    CHECK_EQ_STR(PUT(b, money_put_micro(&b, 1005000, 2)), "1.01");
    CHECK_EQ_STR(PUT(b, money_put_micro(&b, 0, 2)), "0.00");
    CHECK_EQ_STR(PUT(b, money_put_micro(&b, 30000, 2)), "0.03");
    CHECK_EQ_STR(PUT(b, money_put_micro(&b, 2500000, 0)), "3");
    CHECK_EQ_STR(PUT(b, money_put_micro(&b, 7, 3)), "0.000");
    CHECK_EQ_STR(PUT(b, money_put_minor(&b, 120050, 3)), "120.050");
    CHECK_EQ_STR(PUT(b, money_put_minor(&b, 18446744073709551615ull, 2)), "184467440737095516.15");
    buf_free(&b);
}

TEST(money_seconds_and_hours_exactly)
{
    buf b = BUF_INIT;
    CHECK_EQ_STR(PUT(b, money_put_milli(&b, 0)), "0");
    CHECK_EQ_STR(PUT(b, money_put_milli(&b, 90000)), "90");
    CHECK_EQ_STR(PUT(b, money_put_milli(&b, 90500)), "90.5");
    CHECK_EQ_STR(PUT(b, money_put_milli(&b, 90050)), "90.05");
    CHECK_EQ_STR(PUT(b, money_put_milli(&b, 1)), "0.001");
    CHECK_EQ_STR(PUT(b, money_put_milli(&b, 18446744073709551615ull)), "18446744073709551.615");
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, 3600000, 2)), "1.00");
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, 5400000, 2)), "1.50");
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, 17999, 2)), "0.00"); /* 0.00499... h */
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, 18000, 2)), "0.01"); /* 0.005 h: up */
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, 3599999, 2)), "1.00");
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, -5400000, 2)), "-1.50");
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, -1, 2)), "0.00"); /* no "-0.00" */
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, 3600000, 0)), "1");
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, INT64_MIN, 2)), "-2562047788015.22");
    CHECK_EQ_STR(PUT(b, money_put_hours(&b, INT64_MAX, 3)), "2562047788015.216");
    CHECK_EQ_INT(money_put_pct(&b, 1, 0), -1);
    CHECK_EQ_STR(PUT(b, money_put_pct(&b, 5, 8)), "62.50");
    CHECK_EQ_STR(PUT(b, money_put_pct(&b, 1, 3)), "33.33");
    CHECK_EQ_STR(PUT(b, money_put_pct(&b, 2, 3)), "66.67");
    CHECK_EQ_STR(PUT(b, money_put_pct(&b, 3, 2)), "150.00"); /* more CPU time than held: shown as it is */
    /* Products beyond 64 bits stay exact. */
    CHECK_EQ_STR(PUT(b, money_put_pct(&b, UINT64_MAX / 2, UINT64_MAX)), "50.00");
    buf_free(&b);
}

TEST(money_parses_gpu_hours_strictly)
{
    int64_t v = 0;
    const int64_t max = MONEY_GPU_HOURS_MAX * 1000;
    CHECK(money_parse_milli("1000", false, max, &v) == 0 && v == 1000000);
    CHECK(money_parse_milli("12.5", false, max, &v) == 0 && v == 12500);
    CHECK(money_parse_milli("0.001", false, max, &v) == 0 && v == 1);
    CHECK(money_parse_milli("007.250", false, max, &v) == 0 && v == 7250);
    CHECK(money_parse_milli("-20", true, max, &v) == 0 && v == -20000);
    CHECK(money_parse_milli("100000000", false, max, &v) == 0 && v == max);
    v = 42;
    static const char *const bad[] = {"",
                                      "-",
                                      "0",
                                      "0.000",
                                      "-0",
                                      "1.2345",
                                      "1.",
                                      ".5",
                                      "1e5",
                                      " 1",
                                      "1 ",
                                      "+1",
                                      "1,5",
                                      "0x10",
                                      "100000000.001",
                                      "99999999999999999999999",
                                      "1..2",
                                      "--1",
                                      "nan",
                                      "inf",
                                      "1.-2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (money_parse_milli(bad[i], true, max, &v) == 0)
            test_fail(__FILE__, __LINE__, "'%s' parsed", bad[i]);
    }
    CHECK(money_parse_milli("-5", false, max, &v) != 0); /* no reduction where none may be */
    CHECK(money_parse_milli(NULL, true, max, &v) != 0);
    CHECK_EQ_INT(v, 42); /* untouched by a refusal */
}

TEST(money_parses_months_strictly)
{
    int y = 0, m = 0;
    CHECK(money_parse_month("2026-11", &y, &m) == 0 && y == 2026 && m == 11);
    CHECK(money_parse_month("1970-01", &y, &m) == 0 && y == 1970 && m == 1);
    CHECK(money_parse_month("2026-12", &y, &m) == 0 && m == 12);
    static const char *const bad[] = {"",         "2026-13",     "2026-00", "2026-1",  "26-11",
                                      "2026/11",  "2026-11-01",  "2026-1x", "1969-12", " 2026-11",
                                      "2026-11 ", "２０２６-11", "+026-11", "2026--1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (money_parse_month(bad[i], &y, &m) == 0)
            test_fail(__FILE__, __LINE__, "'%s' parsed", bad[i]);
    CHECK(money_parse_month(NULL, &y, &m) != 0);
    CHECK(money_month_start_ms(1970, 1) == 0);
    CHECK(money_month_start_ms(2026, 11) == 1793491200000LL); /* 2026-11-01T00:00:00Z */
    CHECK(money_month_start_ms(2024, 3) == 1709251200000LL);  /* after a 29 February */
    CHECK(money_month_start_ms(2000, 3) == 951868800000LL);
}

TEST(money_csv_cells_are_quoted_and_defused)
{
    buf b = BUF_INIT;
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "train")), "train");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "")), "");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, NULL)), "");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "a,b")), "\"a,b\"");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "say \"hi\"")), "\"say \"\"hi\"\"\"");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "two\nlines")), "\"two\nlines\"");
    /* What a spreadsheet would run stays text. */
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "=1+2")), "'=1+2");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "+cmd")), "'+cmd");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "-2+3")), "'-2+3");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "@SUM(A1)")), "'@SUM(A1)");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "\tx")), "'\tx");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "=HYPERLINK(\"http://x\",\"y\")")),
                 "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
    CHECK_EQ_STR(PUT(b, money_csv_cell(&b, "a=b")), "a=b"); /* only the first character counts */
    buf_free(&b);
}

TEST(money_html_escapes_everything_that_could_be_markup)
{
    buf b = BUF_INIT;
    CHECK_EQ_STR(PUT(b, money_html(&b, "<script>alert('x')</script> & \"q\"")),
                 "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
    CHECK_EQ_STR(PUT(b, money_html(&b, NULL)), "");
    buf_free(&b);
}

TEST(json_numbers_keep_their_digits)
{
    buf b = BUF_INIT;
    json j;
    json_init(&j, &b, false);
    json_arr_begin(&j);
    json_number(&j, "12.30");
    json_number(&j, "-0.5");
    json_number(&j, "0");
    json_number(&j, "1e5"); /* not ours: null */
    json_number(&j, "01");
    json_number(&j, "1.");
    json_number(&j, "");
    json_number(&j, NULL);
    json_number(&j, "1,2");
    json_arr_end(&j);
    CHECK_EQ_STR(buf_str(&b), "[12.30,-0.5,0,null,null,null,null,null,null]");
    buf_free(&b);
}
