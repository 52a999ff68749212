CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    price INTEGER
);

CREATE VIEW expensive_items AS
SELECT id, name FROM items WHERE price > 100;

CREATE INDEX items_price ON items (price);

SELECT count(*) FROM expensive_items;
