-- The findings API pages newest height first (keyset on height, id) under any filter.
CREATE INDEX discrepancies_height_idx ON btc.discrepancies (height DESC, id DESC);
