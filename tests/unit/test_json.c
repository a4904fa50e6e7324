/* test_json.c - the JSON writer. */
#include "common/json.h"
#include "test.h"

TEST(json_compact_and_escaped)
{
    buf b = BUF_INIT;
    json j;
    json_init(&j, &b, false);
    json_obj_begin(&j);
    json_kv_str(&j, "s", "a\"b\\c\n\x01");
    json_kv_int(&j, "i", -3);
    json_kv_uint(&j, "u", 18446744073709551615ull);
    json_kv_str(&j, "n", NULL);
    json_key(&j, "a");
    json_arr_begin(&j);
    json_bool(&j, true);
    json_arr_begin(&j);
    json_arr_end(&j);
    json_obj_begin(&j);
    json_obj_end(&j);
    json_double(&j, 0.5);
    json_arr_end(&j);
    json_obj_end(&j);
    CHECK_EQ_STR(buf_str(&b), "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"i\":-3,\"u\":18446744073709551615,"
                              "\"n\":null,\"a\":[true,[],{},0.5]}");
    buf_free(&b);
}

TEST(json_pretty)
{
    buf b = BUF_INIT;
    json j;
    json_init(&j, &b, true);
    json_obj_begin(&j);
    json_key(&j, "x");
    json_arr_begin(&j);
    json_int(&j, 1);
    json_int(&j, 2);
    json_arr_end(&j);
    json_obj_end(&j);
    CHECK_EQ_STR(buf_str(&b), "{\n  \"x\": [\n    1,\n    2\n  ]\n}");
    buf_free(&b);
}
