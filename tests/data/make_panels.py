"""Write valid.csv and the deliberately broken panels of this folder (run from anywhere).

valid.csv: 50 accounts, 8 weekly periods from 2025-01-06, two rows per account (account i
starts in period i % 7), every fifth account churns on its last row. Each broken file changes
valid.csv in one way (many_errors.csv in several); broken_panels.yaml says what each must
report.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def valid() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(50):
        join = i % 7
        for k, t in enumerate((join, join + 1)):
            rows.append(
                {
                    "account_id": f"a{i:02d}",
                    "period": (pd.Timestamp("2025-01-06") + pd.Timedelta(weeks=t)).date(),
                    "plan": ("free", "team")[i % 2],
                    "ns": round(float(rng.gamma(3.0, 2.0)), 2),
                    "x1": round(float(rng.gamma(2.0, 2.0)), 2),
                    "x2": round(float(rng.gamma(2.0, 1.0)), 2),
                    "logins": int(rng.integers(0, 40)),
                    "rev": round(float(rng.gamma(2.0, 10.0)), 2),
                    "churned": int(k == 1 and i % 5 == 0),
                }
            )
    return pd.DataFrame(rows)


def broken(base: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out = {}
    df = base.astype({"x1": object, "ns": object, "churned": object, "period": object})

    out["missing_column"] = base.drop(columns="x2")
    out["misspelt_column"] = base.rename(columns={"logins": "login"})
    out["extra_column"] = base.assign(notes="n/a")

    d = df.copy()
    d.loc[6, "x1"] = "abc"  # a03, 2025-01-27
    out["non_numeric"] = d

    d = base.copy()
    d.loc[3, "ns"] = -1.5  # a01, 2025-01-20
    out["negative"] = d

    d = base.copy()
    d.loc[10, "x2"] = np.nan  # a05, 2025-02-10
    out["missing_value"] = d

    d = df.copy()
    d.loc[0, "churned"] = 2
    d.loc[2, "churned"] = "yes"
    out["churned_not_binary"] = d

    d = df.copy()
    d.loc[4, "period"] = "2025-13-45"  # a02
    out["bad_period"] = d

    out["duplicate_row"] = pd.concat([base, base.iloc[[8]]], ignore_index=True)  # a04

    d = base.copy()
    d.loc[2, "churned"] = 1  # a01's first row; a01 has a row after it
    out["rows_after_churn"] = d

    d = df.copy()
    d.loc[13, "period"] = "2025-02-25"  # a06's second row, a Tuesday
    out["off_grid"] = d

    d = df.copy()
    d.loc[1, "period"] = "2025-01-20"  # a00: 2025-01-06 then 2025-01-20
    out["gap"] = d

    out["too_few_accounts"] = base[base["account_id"] < "a10"]
    out["too_few_periods"] = base[pd.to_datetime(base["period"]) <= "2025-02-10"]

    d = base.astype({"account_id": object}).copy()
    d.loc[7, "account_id"] = np.nan
    out["missing_account"] = d

    d = base.astype({"plan": object}).copy()
    d.loc[9, "plan"] = np.nan
    out["missing_segment"] = d

    d = base.copy()
    d.loc[[0, 2, 4, 6, 8, 10, 12], "x2"] = -1.0
    out["many_offenders"] = d

    d = df.copy()
    d.loc[3, "ns"] = -2.0
    d.loc[5, "churned"] = 7
    d.loc[11, "period"] = "next week"
    d = d.drop(columns="x2").assign(comment="x")
    out["many_errors"] = pd.concat([d, d.iloc[[20]]], ignore_index=True)
    return out


def main() -> None:
    base = valid()
    base.to_csv(HERE / "valid.csv", index=False)
    for name, frame in broken(base).items():
        frame.to_csv(HERE / f"{name}.csv", index=False)


if __name__ == "__main__":
    main()
