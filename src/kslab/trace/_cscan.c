/* The optional compiled line scanner of kslab.trace.columns (see cscan.py, which drives it).
 *
 * Scanner.scan(lines, start, lineno, counts) walks a list of str lines from index `start` and writes a row
 * (lineno, who, ts, code, ptr, tail) for each line of one of the common shapes whose every key is in the
 * scanner's tables: the prefix (table WHO), the kmem head "NAME: call_site=SYM" (HEAD, with its kind) and
 * tail (TAIL), the function-tracer entry (FUNC), the page event's name (PKIND) and tail (PAGE).  It stops at
 * the first line it cannot take (a key not in a table, anything unusual: non-ASCII text, a pointer that is
 * not 1-16 hex digits, ...) and returns its index with the rows as bytes; Python parses that line with the
 * general code and adds its keys to the tables (Scanner.add), so that the scanner never decides what a line
 * means: it only repeats what Python decided for the same text.  No state is changed but the tables.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { T_WHO, T_HEAD, T_TAIL, T_FUNC, T_PKIND, T_PAGE };
enum { N_KINDS = 11, K_FUNC = 10, K_PAGE_ALLOC = 6 };

typedef struct {
    uint64_t hash;
    char *key; /* tag byte, then the text */
    Py_ssize_t len; /* of key */
    long long v1, v2;
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *tab;
    size_t cap, used;
} Scanner;

static uint64_t hash_of(int tag, int kind, const char *s, Py_ssize_t n)
{
    uint64_t h = 1469598103934665603ULL;
    h = (h ^ (uint64_t)tag) * 1099511628211ULL;
    h = (h ^ (uint64_t)(kind + 1)) * 1099511628211ULL;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h | 1; /* 0 marks an empty slot */
}

static Entry *find(Scanner *sc, int tag, int kind, const char *s, Py_ssize_t n)
{
    if (sc->cap == 0)
        return NULL;
    uint64_t h = hash_of(tag, kind, s, n);
    size_t mask = sc->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        Entry *e = &sc->tab[i];
        if (e->hash == 0)
            return NULL;
        if (e->hash == h && e->len == n + 2 && e->key[0] == (char)tag && e->key[1] == (char)(kind + 1) &&
            memcmp(e->key + 2, s, (size_t)n) == 0)
            return e;
    }
}

static int grow(Scanner *sc)
{
    size_t cap = sc->cap ? sc->cap * 2 : 1024;
    Entry *tab = calloc(cap, sizeof(Entry));
    if (tab == NULL)
        return -1;
    for (size_t i = 0; i < sc->cap; i++) {
        Entry *e = &sc->tab[i];
        if (e->hash == 0)
            continue;
        size_t j = e->hash & (cap - 1);
        while (tab[j].hash != 0)
            j = (j + 1) & (cap - 1);
        tab[j] = *e;
    }
    free(sc->tab);
    sc->tab = tab;
    sc->cap = cap;
    return 0;
}

static void clear_tables(Scanner *sc)
{
    for (size_t i = 0; i < sc->cap; i++)
        free(sc->tab[i].key);
    free(sc->tab);
    sc->tab = NULL;
    sc->cap = sc->used = 0;
}

static void Scanner_dealloc(Scanner *sc)
{
    clear_tables(sc);
    Py_TYPE(sc)->tp_free((PyObject *)sc);
}

/* add(table, kind, key: str, v1, v2): key must be ASCII (other keys are never looked up) */
static PyObject *Scanner_add(Scanner *sc, PyObject *args)
{
    int tag, kind;
    PyObject *key;
    long long v1, v2;
    if (!PyArg_ParseTuple(args, "iiULL", &tag, &kind, &key, &v1, &v2))
        return NULL;
    if (!PyUnicode_IS_ASCII(key))
        Py_RETURN_FALSE;
    const char *s = (const char *)PyUnicode_DATA(key);
    Py_ssize_t n = PyUnicode_GET_LENGTH(key);
    Entry *e = find(sc, tag, kind, s, n);
    if (e != NULL) {
        e->v1 = v1;
        e->v2 = v2;
        Py_RETURN_TRUE;
    }
    if ((sc->used + 1) * 2 > sc->cap && grow(sc) < 0)
        return PyErr_NoMemory();
    char *copy = malloc((size_t)n + 2);
    if (copy == NULL)
        return PyErr_NoMemory();
    copy[0] = (char)tag;
    copy[1] = (char)(kind + 1);
    memcpy(copy + 2, s, (size_t)n);
    uint64_t h = hash_of(tag, kind, s, n);
    size_t j = h & (sc->cap - 1);
    while (sc->tab[j].hash != 0)
        j = (j + 1) & (sc->cap - 1);
    sc->tab[j] = (Entry){h, copy, n + 2, v1, v2};
    sc->used++;
    Py_RETURN_TRUE;
}

static PyObject *Scanner_clear(Scanner *sc, PyObject *Py_UNUSED(ignored))
{
    clear_tables(sc);
    Py_RETURN_NONE;
}

/* index of the first "pat" (2 chars) in s[0:n], or -1 */
static Py_ssize_t find2(const char *s, Py_ssize_t n, char a, char b)
{
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        const char *p = memchr(s + i, a, (size_t)(n - 1 - i));
        if (p == NULL)
            return -1;
        i = p - s;
        if (s[i + 1] == b)
            return i;
    }
    return -1;
}

static Py_ssize_t findstr(const char *s, Py_ssize_t n, const char *pat, Py_ssize_t m)
{
    for (Py_ssize_t i = 0; i + m <= n; i++) {
        const char *p = memchr(s + i, pat[0], (size_t)(n - m - i + 1));
        if (p == NULL)
            return -1;
        i = p - s;
        if (memcmp(s + i, pat, (size_t)m) == 0)
            return i;
    }
    return -1;
}

static int hexval(const char *s, Py_ssize_t n, unsigned long long *out)
{
    if (n < 1 || n > 16)
        return 0;
    unsigned long long v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        v = (v << 4) | (unsigned long long)d;
    }
    *out = v;
    return 1;
}

static int decval(const char *s, Py_ssize_t n, long long *out)
{
    if (n < 1 || n > 18)
        return 0;
    long long v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int all_digits(const char *s, Py_ssize_t n)
{
    if (n < 1)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

typedef struct {
    long long lineno, who, code, tail;
    unsigned long long ptr;
    double ts;
} Row;

/* The row of the line s[0:n] (ASCII), or 0 when the line is left to Python. */
static int scan_bytes(Scanner *sc, const char *s, Py_ssize_t n, Row *r, long long *counts)
{
    Py_ssize_t colon = find2(s, n, ':', ' ');
    if (colon < 0)
        return 0;
    Py_ssize_t sp = colon - 1;
    while (sp >= 0 && s[sp] != ' ')
        sp--;
    if (sp <= 0)
        return 0;
    Entry *w = find(sc, T_WHO, 0, s, sp);
    if (w == NULL)
        return 0;
    /* the time stamp: digits[.digits] */
    const char *t = s + sp + 1;
    Py_ssize_t tn = colon - sp - 1;
    const char *dot = memchr(t, '.', (size_t)tn);
    int seconds = dot != NULL;
    if (seconds) {
        if (!all_digits(t, dot - t) || !all_digits(dot + 1, tn - (dot - t) - 1))
            return 0;
    } else if (!all_digits(t, tn)) {
        return 0;
    }
    if (tn > 60)
        return 0;
    char buf[64];
    memcpy(buf, t, (size_t)tn);
    buf[tn] = 0;
    double ts = strtod(buf, NULL);
    if (ts > 1.7976931348623157e308)
        return 0;
    const char *rest = s + colon + 2;
    Py_ssize_t rn = n - colon - 2;
    int kind;
    Py_ssize_t p = findstr(rest, rn, " ptr=", 5);
    if (p >= 0) {
        Entry *h = find(sc, T_HEAD, 0, rest, p);
        if (h == NULL)
            return 0;
        kind = (int)h->v2;
        const char *pt = rest + p + 5;
        Py_ssize_t pn = rn - p - 5;
        const char *space = memchr(pt, ' ', (size_t)pn);
        Py_ssize_t plen = space ? space - pt : pn;
        const char *tail = space ? space + 1 : pt + pn;
        Py_ssize_t tlen = space ? pn - plen - 1 : 0;
        unsigned long long ptr;
        if (!hexval(pt, plen, &ptr))
            return 0;
        Entry *te = find(sc, T_TAIL, kind, tail, tlen);
        if (te == NULL)
            return 0;
        r->code = h->v1;
        r->ptr = ptr;
        r->tail = te->v1;
    } else if (find2(rest, rn, ':', ' ') < 0) {
        Entry *f = find(sc, T_FUNC, 0, rest, rn);
        if (f == NULL)
            return 0;
        kind = K_FUNC;
        r->code = f->v1;
        r->ptr = 0;
        r->tail = 0;
    } else {
        Py_ssize_t q = findstr(rest, rn, " pfn=", 5);
        if (q < 0)
            return 0;
        Py_ssize_t e = find2(rest, q, ':', ' ');
        if (e <= 0)
            return 0;
        Entry *pk = find(sc, T_PKIND, 0, rest, e);
        if (pk == NULL || q < e + 7 || memcmp(rest + e + 2, "page=", 5) != 0)
            return 0;
        kind = (int)pk->v1;
        const char *ft = rest + q + 5;
        Py_ssize_t fn = rn - q - 5;
        const char *space = memchr(ft, ' ', (size_t)fn);
        Py_ssize_t flen = space ? space - ft : fn;
        const char *tail = space ? space + 1 : ft + fn;
        Py_ssize_t tlen = space ? fn - flen - 1 : 0;
        Entry *pe = find(sc, T_PAGE, kind, tail, tlen);
        if (pe == NULL)
            return 0;
        unsigned long long page;
        long long pfn;
        if (!hexval(rest + e + 7, q - e - 7, &page) || !decval(ft, flen, &pfn))
            return 0;
        r->code = pe->v1;
        r->ptr = page;
        r->tail = pfn;
    }
    r->who = w->v1;
    r->ts = ts;
    counts[kind]++;
    counts[seconds ? N_KINDS : N_KINDS + 1] = 1;
    return 1;
}

static int scan_line(Scanner *sc, PyObject *line, Row *r, long long *counts)
{
    if (!PyUnicode_Check(line) || !PyUnicode_IS_ASCII(line))
        return 0;
    return scan_bytes(sc, (const char *)PyUnicode_DATA(line), PyUnicode_GET_LENGTH(line), r, counts);
}

typedef struct {
    long long *line, *tail;
    int *who, *code;
    double *ts;
    unsigned long long *ptr;
    Py_ssize_t k, cap;
} Cols;

static int cols_alloc(Cols *c, Py_ssize_t cap)
{
    c->k = 0;
    c->cap = cap;
    c->line = PyMem_Malloc(sizeof(long long) * (size_t)(cap + 1));
    c->who = PyMem_Malloc(sizeof(int) * (size_t)(cap + 1));
    c->ts = PyMem_Malloc(sizeof(double) * (size_t)(cap + 1));
    c->code = PyMem_Malloc(sizeof(int) * (size_t)(cap + 1));
    c->ptr = PyMem_Malloc(sizeof(unsigned long long) * (size_t)(cap + 1));
    c->tail = PyMem_Malloc(sizeof(long long) * (size_t)(cap + 1));
    return c->line && c->who && c->ts && c->code && c->ptr && c->tail;
}

static void cols_free(Cols *c)
{
    PyMem_Free(c->line);
    PyMem_Free(c->who);
    PyMem_Free(c->ts);
    PyMem_Free(c->code);
    PyMem_Free(c->ptr);
    PyMem_Free(c->tail);
}

#define GROW(f, t) do { void *p_ = PyMem_Realloc(c->f, sizeof(t) * (size_t)cap); if (!p_) return 0; c->f = p_; } while (0)
static int cols_grow(Cols *c)
{
    Py_ssize_t cap = c->cap * 2 + 1;
    GROW(line, long long);
    GROW(who, int);
    GROW(ts, double);
    GROW(code, int);
    GROW(ptr, unsigned long long);
    GROW(tail, long long);
    c->cap = cap;
    return 1;
}

static int cols_put(Cols *c, long long lineno, Row *r)
{
    if (c->k >= c->cap && !cols_grow(c))
        return 0;
    Py_ssize_t k = c->k++;
    c->line[k] = lineno;
    c->who[k] = (int)r->who;
    c->ts[k] = r->ts;
    c->code[k] = (int)r->code;
    c->ptr[k] = r->ptr;
    c->tail[k] = r->tail;
    return 1;
}

static PyObject *cols_value(Cols *c, Py_ssize_t a, Py_ssize_t b)
{
    Py_ssize_t k = c->k;
    return Py_BuildValue("nny#y#y#y#y#y#", a, b, (char *)c->line, (Py_ssize_t)(k * sizeof(long long)),
                         (char *)c->who, (Py_ssize_t)(k * sizeof(int)), (char *)c->ts, (Py_ssize_t)(k * sizeof(double)),
                         (char *)c->code, (Py_ssize_t)(k * sizeof(int)), (char *)c->ptr,
                         (Py_ssize_t)(k * sizeof(unsigned long long)), (char *)c->tail,
                         (Py_ssize_t)(k * sizeof(long long)));
}

/* scan_text(text, pos, lineno, counts) -> (stop, end, lineno_b, who_b, ts_b, code_b, ptr_b, tail_b): the lines
 * of an ASCII text (separated by \n, the last one running to the end) from index pos on; text[stop:end] is
 * the first line left to Python, stop > len(text) when every line was taken. */
static PyObject *Scanner_scan_text(Scanner *sc, PyObject *args)
{
    PyObject *text;
    Py_ssize_t pos;
    long long lineno;
    Py_buffer cb;
    if (!PyArg_ParseTuple(args, "UnLw*", &text, &pos, &lineno, &cb))
        return NULL;
    if (!PyUnicode_IS_ASCII(text) || cb.len < (Py_ssize_t)((N_KINDS + 2) * sizeof(long long))) {
        PyBuffer_Release(&cb);
        PyErr_SetString(PyExc_ValueError, "scan_text: an ASCII str and 13 signed 64-bit counts expected");
        return NULL;
    }
    long long *counts = (long long *)cb.buf;
    const char *s = (const char *)PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Cols c;
    PyObject *out = NULL;
    if (!cols_alloc(&c, 4096)) {
        PyErr_NoMemory();
        goto done;
    }
    Row r;
    while (pos <= n) {
        const char *nl = memchr(s + pos, '\n', (size_t)(n - pos));
        Py_ssize_t end = nl ? nl - s : n;
        if (!scan_bytes(sc, s + pos, end - pos, &r, counts)) {
            out = cols_value(&c, pos, end);
            goto done;
        }
        if (!cols_put(&c, lineno + c.k + 1, &r)) {
            PyErr_NoMemory();
            goto done;
        }
        pos = end + 1;
    }
    out = cols_value(&c, pos, pos);
done:
    cols_free(&c);
    PyBuffer_Release(&cb);
    return out;
}

/* scan(lines, start, lineno, counts) -> (stop, lineno_b, who_b, ts_b, code_b, ptr_b, tail_b) */
static PyObject *Scanner_scan(Scanner *sc, PyObject *args)
{
    PyObject *lines;
    Py_ssize_t start;
    long long lineno;
    Py_buffer cb;
    if (!PyArg_ParseTuple(args, "O!nLw*", &PyList_Type, &lines, &start, &lineno, &cb))
        return NULL;
    if (cb.len < (Py_ssize_t)((N_KINDS + 2) * sizeof(long long))) {
        PyBuffer_Release(&cb);
        PyErr_SetString(PyExc_ValueError, "counts: 13 signed 64-bit integers expected");
        return NULL;
    }
    long long *counts = (long long *)cb.buf;
    Py_ssize_t n = PyList_GET_SIZE(lines);
    Py_ssize_t cap = n > start ? n - start : 0;
    long long *c_line = PyMem_Malloc(sizeof(long long) * (size_t)(cap + 1));
    int *c_who = PyMem_Malloc(sizeof(int) * (size_t)(cap + 1));
    double *c_ts = PyMem_Malloc(sizeof(double) * (size_t)(cap + 1));
    int *c_code = PyMem_Malloc(sizeof(int) * (size_t)(cap + 1));
    unsigned long long *c_ptr = PyMem_Malloc(sizeof(unsigned long long) * (size_t)(cap + 1));
    long long *c_tail = PyMem_Malloc(sizeof(long long) * (size_t)(cap + 1));
    PyObject *out = NULL;
    if (!c_line || !c_who || !c_ts || !c_code || !c_ptr || !c_tail) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t i = start, k = 0;
    Row r;
    for (; i < n; i++) {
        if (!scan_line(sc, PyList_GET_ITEM(lines, i), &r, counts))
            break;
        c_line[k] = lineno + (i - start) + 1;
        c_who[k] = (int)r.who;
        c_ts[k] = r.ts;
        c_code[k] = (int)r.code;
        c_ptr[k] = r.ptr;
        c_tail[k] = r.tail;
        k++;
    }
    out = Py_BuildValue("ny#y#y#y#y#y#", i, (char *)c_line, (Py_ssize_t)(k * sizeof(long long)), (char *)c_who,
                        (Py_ssize_t)(k * sizeof(int)), (char *)c_ts, (Py_ssize_t)(k * sizeof(double)), (char *)c_code,
                        (Py_ssize_t)(k * sizeof(int)), (char *)c_ptr, (Py_ssize_t)(k * sizeof(unsigned long long)),
                        (char *)c_tail, (Py_ssize_t)(k * sizeof(long long)));
done:
    PyMem_Free(c_line);
    PyMem_Free(c_who);
    PyMem_Free(c_ts);
    PyMem_Free(c_code);
    PyMem_Free(c_ptr);
    PyMem_Free(c_tail);
    PyBuffer_Release(&cb);
    return out;
}

static PyMethodDef Scanner_methods[] = {
    {"add", (PyCFunction)Scanner_add, METH_VARARGS, "add(table, kind, key, v1, v2): a key Python has validated"},
    {"clear", (PyCFunction)Scanner_clear, METH_NOARGS, "forget every key"},
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS, "scan(lines, start, lineno, counts) -> (stop, columns...)"},
    {"scan_text", (PyCFunction)Scanner_scan_text, METH_VARARGS,
     "scan_text(text, pos, lineno, counts) -> (stop, end, columns...)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kslab.trace._cscan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The compiled line scanner of kslab.trace.columns",
    .tp_methods = Scanner_methods,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef cscan_module = {PyModuleDef_HEAD_INIT, "_cscan", "kslab's compiled line scanner", -1, NULL};

PyMODINIT_FUNC PyInit__cscan(void)
{
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&cscan_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
